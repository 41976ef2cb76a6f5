// `phatgoose route-stats`: routing statistics over whole datasets (routing/routing_analysis.h), printed per
// dataset and stored in the results database as a "route-stats" run.
#include <algorithm>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>
#include <sstream>

#include "cli/command.h"
#include "cli/interrupt_guard.h"
#include "cli/routing_options.h"
#include "cli/status_line.h"
#include "data/dataset.h"
#include "error.h"
#include "eval/evaluator.h"
#include "model/compute_policy.h"
#include "model/t5_loader.h"
#include "routing/routing_analysis.h"
#include "store/results_store.h"
#include "version.h"

namespace phatgoose {
namespace {

using nlohmann::json;

// Each expert's mean weight averaged over the dataset's modules (encoder and decoder alike).
std::vector<double> overallWeight(const DatasetRoutingStatistics& d, size_t experts) {
    std::vector<double> total(experts, 0.0);
    for (const SiteStatistics& s : d.sites) {
        const std::vector<double> w = s.meanWeight();
        for (size_t e = 0; e < experts; ++e) total[e] += w[e];
    }
    for (double& v : total) v = d.sites.empty() ? 0.0 : v / double(d.sites.size());
    return total;
}

void printSummary(std::ostream& out, const RoutingStatistics& stats, size_t shown) {
    out << "Method " << stats.method << ", top-" << stats.top_k << ", " << stats.expert_names.size()
        << " experts\n";
    for (const DatasetRoutingStatistics& d : stats.datasets) {
        const std::vector<double> weight = overallWeight(d, stats.expert_names.size());
        std::vector<size_t> order(weight.size());
        std::iota(order.begin(), order.end(), size_t(0));
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return weight[a] > weight[b]; });
        double entropy = 0.0;
        for (const SiteStatistics& s : d.sites) entropy += s.entropy();
        if (!d.sites.empty()) entropy /= double(d.sites.size());
        out << "\n"
            << d.name << " (" << d.examples << " examples, " << d.sites.size()
            << " modules, mean routing entropy " << std::fixed << std::setprecision(2) << entropy
            << " nats)\n";
        for (size_t i = 0; i < std::min(shown, order.size()); ++i)
            out << "  " << std::setw(6) << std::setprecision(1) << 100.0 * weight[order[i]] << "%  "
                << stats.expert_names[order[i]] << "\n";
    }
}

json runSettings(const CommandContext& ctx, const std::vector<Dataset>& data) {
    json files = json::array();
    for (const Dataset& d : data) files.push_back(d.path.string());
    json settings = {{"model", ctx.value("model")},
                     {"experts", ctx.value("experts")},
                     {"data", files},
                     {"batch", ctx.integer("batch", 1)},
                     {"max_input_tokens", ctx.integer("max-input-tokens", 2)},
                     {"limit", ctx.integer("limit", 0)},
                     {"exclude", excludedExperts(ctx)}};
    if (const TokenPin pin = tokenPin(ctx); pin.active()) settings["pin"] = tokenPinJson(pin);
    return settings;
}

void runRouteStats(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const std::string model_dir = ctx.required("model", "DIR");
    if (!ctx.parser.isSet("experts") && !ctx.parser.isSet("adapter"))
        throw UsageError("--experts DIR (or --adapter DIR) is required");
    QStringList files = ctx.parser.values("data") + ctx.parser.positionalArguments();
    if (files.isEmpty()) throw UsageError("--data FILE.jsonl is required");
    const int64_t batch = ctx.integer("batch", 1), max_tokens = ctx.integer("max-input-tokens", 2);
    const int64_t limit = ctx.integer("limit", 0);
    // The database first: a wrong --db should fail before the model loads.
    std::unique_ptr<ResultsStore> store;
    if (ctx.parser.isSet("db")) store = std::make_unique<ResultsStore>(ctx.value("db"));
    std::vector<Dataset> data;
    for (const QString& f : files) {
        Dataset d = loadJsonl(f.toStdString(), ctx.parser.isSet("skip-bad"));
        if (d.skipped_lines)
            ctx.err << d.path.string() << ": skipped " << d.skipped_lines << " malformed line(s)\n";
        appendDataset(data, std::move(d));
    }
    PretrainedT5 t5 = loadPretrainedT5(model_dir);
    const std::unique_ptr<Router> router = routerFromOptions(ctx, t5, true);
    std::vector<RoutingDataset> datasets;
    for (const Dataset& d : data) {
        int64_t cut = 0;
        datasets.push_back(tokenizeForRouting(d, *t5.tokenizer, max_tokens, limit, &cut));
        if (cut)
            ctx.err << d.path.string() << ": " << cut << " input(s) or target(s) cut to " << max_tokens
                    << " tokens\n";
    }

    InterruptGuard guard;
    StatusLine line(ctx.err);
    RoutingAnalysisOptions options{.batch_size = batch, .progress = {}, .cancel = InterruptGuard::flag()};
    options.progress = [&](const RoutingAnalysisProgress& p) {
        std::ostringstream text;
        text << "[" << p.examples_done << "/" << p.examples_total << "] " << p.dataset;
        line.show(text.str());
    };
    const RoutingAnalysis analysis = analyseRouting(*t5.model, *router, datasets, options);
    line.end();
    std::optional<int64_t> run;
    if (store)
        run = store->saveRoutingAnalysis(analysis.statistics, analysis.cancelled,
                                         runSettings(ctx, data).dump(), PHATGOOSE_VERSION);
    if (ctx.parser.isSet("json"))
        ctx.out << analysis.statistics.toJson() << "\n";
    else
        printSummary(ctx.out, analysis.statistics, size_t(ctx.integer("top", 1, 1000)));
    if (run)
        ctx.err << "routing statistics saved as run " << *run << " in " << store->file().string() << "\n";
    if (analysis.cancelled)
        throw Error("interrupted after " + std::to_string(analysis.statistics.datasets.size()) +
                    " complete dataset(s)" +
                    (run ? "; they are kept in run " + std::to_string(*run) : std::string()));
}

}  // namespace

std::vector<Command> analysisCommands() {
    return {{"route-stats",
             "Routing statistics over whole datasets: each expert's mean weight, kept and top-1 shares, the "
             "routing's entropy and load, per dataset and module.",
             [](QCommandLineParser& p) {
                 p.addOption({{"model", "m"}, "Model folder in Hugging Face layout.", "DIR"});
                 p.addOption({"data", "A JSON Lines dataset; repeat, or list more files after it.", "FILE"});
                 p.addOption({"db",
                              "Store the full statistics as a route-stats run in this results database.",
                              "FILE"});
                 p.addOption({"json", "Print the full statistics as one JSON object."});
                 p.addOption({"top", "Experts listed per dataset (default 5).", "N", "5"});
                 p.addOption({"batch", "Examples per forward pass (default 8).", "N", "8"});
                 const QString input_tokens = QString::number(EvalSettings{}.max_input_tokens);
                 p.addOption(
                     {"max-input-tokens",
                      "Cut longer inputs and targets to N tokens, eos kept (default " + input_tokens + ").",
                      "N", input_tokens});
                 p.addOption({"limit", "Use at most N examples of each dataset (default 0: all).", "N", "0"});
                 p.addOption({"skip-bad", "Skip and count malformed dataset lines instead of stopping."});
                 p.addOption(threadsOption());
                 declareRoutingOptions(p);
                 p.addPositionalArgument("FILES", "More datasets.", "[FILES...]");
             },
             runRouteStats}};
}

}  // namespace phatgoose
