// `phatgoose route`: generate under a routing method and show which experts every token used.
#include <algorithm>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cli/command.h"
#include "cli/routing_options.h"
#include "cli/timing_report.h"
#include "error.h"
#include "model/compute_policy.h"
#include "model/generation.h"
#include "routing/probe.h"
#include "store/results_store.h"

namespace phatgoose {
namespace {

// Pads to `width` columns counting UTF-8 code points, not bytes (pieces start with the 3-byte "▁").
std::string padded(const std::string& text, size_t width) {
    std::string out;
    size_t columns = 0;
    for (size_t i = 0; i < text.size() && columns < width; ++columns) {
        size_t len = 1;
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0xF0)
            len = 4;
        else if (c >= 0xE0)
            len = 3;
        else if (c >= 0xC0)
            len = 2;
        out += text.substr(i, len);
        i += len;
    }
    return out + std::string(width - columns, ' ');
}

// [rows][expert] share of the modules at which the expert was a row's top choice.
std::vector<std::vector<double>> topOneShares(const RoutingTrace& trace, bool decoder_rows, int64_t rows) {
    std::vector<std::vector<double>> share(size_t(rows), std::vector<double>(trace.expert_names.size(), 0.0));
    std::vector<int64_t> modules(size_t(rows), 0);
    for (const SiteRouting& s : trace.sites) {
        if (s.decoder_tokens != decoder_rows) continue;
        for (int64_t t = 0; t < std::min(rows, s.tokens); ++t) {
            share[size_t(t)][size_t(s.experts[size_t(t * s.k)])] += 1.0;
            modules[size_t(t)] += 1;
        }
    }
    for (size_t t = 0; t < share.size(); ++t)
        for (double& v : share[t]) v = modules[t] ? v / double(modules[t]) : 0.0;
    return share;
}

// Each token's experts by share, largest first, as "name 62%": readable with 166 experts, where one column
// per expert is not.
void printTopExperts(std::ostream& out, const RoutingTrace& trace, bool decoder_rows,
                     const std::vector<std::string>& pieces, size_t shown) {
    const auto share = topOneShares(trace, decoder_rows, int64_t(pieces.size()));
    out << (decoder_rows ? "\nDecoder tokens" : "\nEncoder tokens")
        << ": the experts that were the token's top choice most often (share of its modules)\n";
    out << std::setw(4) << "#"
        << "  " << padded("token", 16) << " top experts\n";
    for (size_t t = 0; t < pieces.size(); ++t) {
        std::vector<size_t> order(trace.expert_names.size());
        for (size_t e = 0; e < order.size(); ++e) order[e] = e;
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return share[t][a] > share[t][b]; });
        out << std::setw(4) << t << "  " << padded(pieces[t], 16);
        for (size_t i = 0; i < std::min(shown, order.size()) && share[t][order[i]] > 0; ++i) {
            std::ostringstream cell;
            cell << std::fixed << std::setprecision(0) << 100.0 * share[t][order[i]] << "%";
            out << (i ? ", " : " ") << trace.expert_names[order[i]] << " " << cell.str();
        }
        out << "\n";
    }
}

void printShares(std::ostream& out, const RoutingTrace& trace, bool decoder_rows,
                 const std::vector<std::string>& pieces) {
    const auto share = topOneShares(trace, decoder_rows, int64_t(pieces.size()));
    out << (decoder_rows ? "\nDecoder tokens" : "\nEncoder tokens")
        << ": share of the token's modules where each expert was the top choice\n";
    out << std::setw(4) << "#"
        << "  " << padded("token", 16);
    for (const auto& name : trace.expert_names)
        out << " " << std::setw(std::max<int>(6, int(name.size()))) << name;
    out << "\n";
    for (size_t t = 0; t < pieces.size(); ++t) {
        out << std::setw(4) << t << "  " << padded(pieces[t], 16);
        for (size_t e = 0; e < trace.expert_names.size(); ++e) {
            std::ostringstream cell;
            cell << std::fixed << std::setprecision(0) << 100.0 * share[t][e] << "%";
            out << " " << std::setw(std::max<int>(6, int(trace.expert_names[e].size()))) << cell.str();
        }
        out << "\n";
    }
}

void runRoute(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const std::string text = ctx.positionalText();
    if (text.empty()) throw Error("no input text given");
    const std::string model_dir = ctx.required("model", "DIR");
    if (!ctx.parser.isSet("experts") && !ctx.parser.isSet("adapter"))
        throw UsageError("--experts DIR (or --adapter DIR) is required");
    TimingReport timings(ctx.parser.isSet("timings"));
    PretrainedT5 t5 = loadPretrainedT5(model_dir);
    timings.mark("load");
    auto router = routerFromOptions(ctx, t5, true);
    timings.mark("router", std::to_string(router->trace().expert_names.size()) + " experts");
    const ProbeOutcome probe = probeWithRouter(t5, *router, text, ctx.integer("max-new-tokens", 1),
                                               ctx.integer("max-input-tokens", 2));
    timings.add("tokenize", probe.tokenize_ms);
    timings.addGeneration(probe.timings, router.get());
    const PrintTimingsAtExit print_timings(timings, ctx.err);
    for (const std::string& w : probe.warnings) ctx.err << "warning: " << w << "\n";
    const RoutingTrace& trace = probe.trace;
    const std::string& output = probe.output;
    if (ctx.parser.isSet("db")) {
        ResultsStore store(ctx.value("db"));
        const int64_t id = store.saveTrace(std::nullopt, trace.method + ": " + text, trace.toJson());
        ctx.err << "routing trace saved as #" << id << " in " << store.file().string() << "\n";
    }
    if (ctx.parser.isSet("json")) {
        ctx.out << "{\"output\": " << nlohmann::json(output).dump() << ", \"trace\": " << trace.toJson()
                << "}\n";
        return;
    }
    ctx.out << "Output: " << output << "\n"
            << "Method " << trace.method << ", top-" << trace.top_k << ", " << trace.expert_names.size()
            << " experts, " << trace.sites.size() << " routed modules\n";
    if (ctx.parser.isSet("all-columns")) {
        printShares(ctx.out, trace, false, trace.encoder_pieces);
        printShares(ctx.out, trace, true, trace.decoder_pieces);
        return;
    }
    const auto shown = size_t(ctx.integer("top", 1, 1000));
    printTopExperts(ctx.out, trace, false, trace.encoder_pieces, shown);
    printTopExperts(ctx.out, trace, true, trace.decoder_pieces, shown);
}

}  // namespace

std::vector<Command> routingCommands() {
    return {
        {"route", "Generate under a routing method and show the experts every token used.",
         [](QCommandLineParser& p) {
             p.addOption({{"model", "m"}, "Model folder in Hugging Face layout.", "DIR"});
             p.addOption({"json", "Print {\"output\", \"trace\"} as JSON (the full routing trace)."});
             p.addOption({"db", "Also save the routing trace in this results database.", "FILE"});
             p.addOption(threadsOption());
             declareTimingsOption(p);
             p.addOption({"top", "Experts listed per token, by share of its modules (default 3).", "N", "3"});
             p.addOption({"all-columns", "Print one column per expert (the share of every expert) instead."});
             const QString tokens = QString::number(GenerationOptions{}.max_new_tokens);
             p.addOption({"max-new-tokens", "Stop after this many new tokens (default " + tokens + ").", "N",
                          tokens});
             declareInputLimit(p);
             declareRoutingOptions(p);
             p.addPositionalArgument("TEXT", "The input text.");
         },
         runRoute}};
}

}  // namespace phatgoose
