// `phatgoose eval` (the routing methods x datasets grid into the results database) and `phatgoose results`
// (a stored run as a table, CSV or JSON).
#include <algorithm>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cli/command.h"
#include "cli/interrupt_guard.h"
#include "cli/routing_options.h"
#include "cli/status_line.h"
#include "error.h"
#include "eval/evaluator.h"
#include "experts/expert_exclusion.h"
#include "experts/expert_library.h"
#include "model/compute_policy.h"
#include "model/t5_loader.h"
#include "routing/expert_examples.h"
#include "store/results_store.h"
#include "version.h"

namespace phatgoose {
namespace {

using nlohmann::json;

std::string rowLabel(const MetricRecord& m) {
    return m.top_k > 0 ? m.method + " (k=" + std::to_string(m.top_k) + ")" : m.method;
}

std::string percent(double value) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << value;
    return s.str();
}

// Rows and columns in first-seen order, so the table follows the order the grid was asked in.
struct MetricTable {
    std::vector<std::string> rows, columns;
    std::map<std::pair<std::string, std::string>, double> cells;

    explicit MetricTable(const std::vector<MetricRecord>& metrics) {
        for (const MetricRecord& m : metrics) {
            const std::string row = rowLabel(m);
            if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
            if (std::find(columns.begin(), columns.end(), m.dataset) == columns.end())
                columns.push_back(m.dataset);
            cells[{row, m.dataset}] = m.value;
        }
    }
    double average(const std::string& row) const {
        double sum = 0;
        int n = 0;
        for (const auto& [key, value] : cells) {
            if (key.first != row) continue;
            sum += value;
            ++n;
        }
        return n ? sum / n : 0.0;
    }
};

void printTable(std::ostream& out, const std::vector<MetricRecord>& metrics) {
    if (metrics.empty()) {
        out << "(no results: the run stopped before its first method x dataset cell)\n";
        return;
    }
    const MetricTable t(metrics);
    size_t first = 6;
    for (const auto& r : t.rows) first = std::max(first, r.size());
    out << std::left << std::setw(int(first)) << "method";
    for (const auto& c : t.columns)
        out << "  " << std::right << std::setw(int(std::max<size_t>(7, c.size()))) << c;
    out << "  " << std::setw(7) << "average"
        << "\n";
    for (const auto& r : t.rows) {
        out << std::left << std::setw(int(first)) << r << std::right;
        for (const auto& c : t.columns) {
            auto it = t.cells.find({r, c});
            out << "  " << std::setw(int(std::max<size_t>(7, c.size())))
                << (it == t.cells.end() ? "-" : percent(it->second));
        }
        out << "  " << std::setw(7) << percent(t.average(r)) << "\n";
    }
}

std::string csvField(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string quoted = "\"";
    for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

void printCsv(std::ostream& out, int64_t run, const std::vector<MetricRecord>& metrics) {
    out << "run,method,top_k,dataset,metric,value,examples\n";
    for (const MetricRecord& m : metrics)
        out << run << "," << csvField(m.method) << "," << m.top_k << "," << csvField(m.dataset) << ","
            << csvField(m.metric) << "," << m.value << "," << m.examples << "\n";
}

json runJson(const RunRecord& r) {
    json settings = json::parse(r.settings, nullptr, false);
    return {{"id", r.id},
            {"kind", r.kind},
            {"status", r.status},
            {"started_at", r.started_at},
            {"finished_at", r.finished_at.empty() ? json() : json(r.finished_at)},
            {"version", r.version},
            {"settings", settings.is_discarded() ? json(r.settings) : settings}};
}

void printJson(std::ostream& out, const RunRecord& run, const std::vector<MetricRecord>& metrics) {
    json j{{"run", runJson(run)}, {"metrics", json::array()}, {"average", json::object()}};
    for (const MetricRecord& m : metrics)
        j["metrics"].push_back({{"method", m.method},
                                {"top_k", m.top_k},
                                {"dataset", m.dataset},
                                {"metric", m.metric},
                                {"value", m.value},
                                {"examples", m.examples}});
    const MetricTable t(metrics);
    for (const auto& r : t.rows) j["average"][r] = t.average(r);
    out << j.dump(2) << "\n";
}

std::vector<MetricRecord> metricsOf(const std::vector<EvalCell>& cells) {
    std::vector<MetricRecord> out;
    for (const EvalCell& c : cells)
        out.push_back({c.method, c.top_k, c.score.dataset, c.score.metric, c.score.value, c.score.examples});
    return out;
}

std::vector<Dataset> loadDatasets(const CommandContext& ctx) {
    QStringList files = ctx.parser.values("data") + ctx.parser.positionalArguments();
    if (files.isEmpty()) throw UsageError("--data FILE.jsonl is required");
    std::vector<Dataset> datasets;
    for (const QString& f : files) {
        Dataset d = loadJsonl(f.toStdString(), ctx.parser.isSet("skip-bad"));
        if (d.skipped_lines)
            ctx.err << d.path.string() << ": skipped " << d.skipped_lines << " malformed line(s)\n";
        appendDataset(datasets, std::move(d));
    }
    return datasets;
}

void runEval(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const std::string model_dir = ctx.required("model", "DIR");
    EvalSettings settings;
    settings.methods = parseEvalMethods(ctx.value("methods"), ctx.integer("top-k", 1));
    for (EvalMethod& m : settings.methods) m.spec.require_gates = ctx.parser.isSet("require-gates");
    settings.batch_size = ctx.integer("batch", 1);
    settings.max_new_tokens = ctx.integer("max-new-tokens", 1);
    settings.max_input_tokens = ctx.integer("max-input-tokens", 2);
    // The database first: a wrong --db should fail before minutes of model loading.
    ResultsStore store(ctx.required("db", "FILE"));
    const std::vector<Dataset> datasets = loadDatasets(ctx);
    PretrainedT5 t5 = loadPretrainedT5(model_dir);
    std::vector<LoraExpert> experts;
    if (ctx.parser.isSet("experts"))
        experts = std::move(ExpertLibrary::open(ctx.value("experts"), t5.config).experts());
    const std::vector<std::string> excluded = excludedExperts(ctx);
    if (!excluded.empty()) experts = withoutExperts(std::move(experts), excluded);
    const std::unique_ptr<ExpertExamples> examples =
        examplesNeededBy(settings, experts, *t5.tokenizer, ctx.value("expert-data"));
    Evaluator evaluator(*t5.model, *t5.tokenizer, experts, examples.get());
    InterruptGuard guard;
    EvalHooks hooks;
    hooks.cancel = InterruptGuard::flag();
    StatusLine line(ctx.err);
    hooks.progress = [&](const EvalProgress& p) {
        std::ostringstream text;
        text << "[" << p.done << "/" << p.total << "] " << p.method << " on " << p.dataset;
        line.show(text.str());
    };
    const json extra{{"model", model_dir},
                     {"experts", ctx.value("experts")},
                     {"expert_data", ctx.value("expert-data")},
                     {"exclude", excluded}};
    const StoredEvaluation stored =
        evaluateIntoStore(evaluator, store, datasets, settings, hooks,
                          evalSettingsJson(datasets, settings, extra.dump()), PHATGOOSE_VERSION);
    line.end();
    for (const std::string& w : stored.result.warnings) ctx.err << "warning: " << w << "\n";
    printTable(ctx.out, metricsOf(stored.result.cells));
    ctx.out << "Run " << stored.run << " saved to " << store.file().string() << "\n";
    if (stored.result.cancelled)
        throw Error("interrupted; the finished cells are kept in run " + std::to_string(stored.run));
}

RunRecord chosenRun(const CommandContext& ctx, const ResultsStore& store) {
    if (ctx.parser.isSet("run")) {
        const int64_t id = ctx.integer("run", 1);
        auto run = store.run(id);
        if (!run) throw Error(store.file().string() + ": no run with id " + std::to_string(id));
        return *run;
    }
    const std::vector<RunRecord> runs = store.runs();
    for (auto it = runs.rbegin(); it != runs.rend(); ++it)
        if (it->kind == "eval") return *it;
    throw Error(store.file().string() + ": no evaluation runs yet (run 'phatgoose eval' first)");
}

void runResults(CommandContext& ctx) {
    const std::string file = ctx.required("db", "FILE");
    const std::string format = ctx.value("format");
    if (format != "table" && format != "csv" && format != "json")
        throw UsageError("--format must be table, csv or json, got '" + format + "'");
    // Reading must not leave an empty database behind a mistyped path.
    if (!std::filesystem::exists(file)) throw Error(file + ": no such results database");
    const ResultsStore store(file);
    const RunRecord run = chosenRun(ctx, store);
    const std::vector<MetricRecord> metrics = store.metrics(run.id);
    if (format == "csv") return printCsv(ctx.out, run.id, metrics);
    if (format == "json") return printJson(ctx.out, run, metrics);
    ctx.out << "Run " << run.id << " (" << run.kind << ", " << run.status << ", started " << run.started_at
            << ")\n";
    printTable(ctx.out, metrics);
}

void declareEval(QCommandLineParser& p) {
    p.addOption({{"model", "m"}, "Model folder in Hugging Face layout.", "DIR"});
    p.addOption({"experts", "Expert library folder.", "DIR"});
    p.addOption({"data", "A JSON Lines dataset; repeat, or list more files after it.", "FILE"});
    const RoutingSpec defaults;
    const QString method = QString::fromStdString(defaults.method), k = QString::number(defaults.top_k);
    p.addOption({"methods",
                 QString::fromStdString("Comma-separated routing methods (" + routingMethodList() + "); " +
                                        routingMethodName(RoutingMethodId::Single) +
                                        ":NAME for one expert (default ") +
                     method + ").",
                 "LIST", method});
    p.addOption({"top-k", "Experts kept per token and module (default " + k + ").", "K", k});
    p.addOption({"expert-data",
                 "Folder of <expert>.jsonl training files for retrieval and average-activation.", "DIR"});
    const EvalSettings d;
    const QString batch = QString::number(d.batch_size), new_tokens = QString::number(d.max_new_tokens),
                  input_tokens = QString::number(d.max_input_tokens);
    p.addOption({"batch", "Examples per forward pass (default " + batch + ").", "N", batch});
    p.addOption({"max-new-tokens",
                 "Generation length limit for exact-match examples (default " + new_tokens + ").", "N",
                 new_tokens});
    p.addOption({"max-input-tokens",
                 "Cut longer inputs to N tokens, eos kept; each dataset's count is reported (default " +
                     input_tokens + ").",
                 "N", input_tokens});
    p.addOption(
        {"require-gates",
         "Refuse gate-based methods when some experts have no gate (default: route among the gated ones "
         "and say which were left out)."});
    p.addOption({"skip-bad", "Skip and count malformed dataset lines instead of stopping."});
    declareExcludeOption(p);
    p.addOption({"db", "Results database (the workspace's workbench.sqlite).", "FILE"});
    p.addOption(threadsOption());
    p.addPositionalArgument("FILES", "More datasets.", "[FILES...]");
}

void declareResults(QCommandLineParser& p) {
    p.addOption({"db", "Results database.", "FILE"});
    p.addOption({"format", "table, csv or json (default table).", "FORMAT", "table"});
    p.addOption({"run", "Run id (default: the latest evaluation).", "ID"});
}

}  // namespace

std::vector<Command> evalCommands() {
    return {{"eval", "Evaluate routing methods on datasets; results go to the results database.", declareEval,
             runEval},
            {"results", "Show a stored evaluation run as a table, CSV or JSON.", declareResults, runResults}};
}

}  // namespace phatgoose
