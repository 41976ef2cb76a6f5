#include "cluster/cluster_collect.h"

#include <fstream>
#include <set>
#include <sstream>

#include "atomic_file.h"
#include "error.h"
#include "experts/lora_expert.h"
#include "model/t5_config.h"
#include "store/results_store.h"

namespace phatgoose {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json readJson(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return json::object();
    std::ostringstream text;
    text << in.rdbuf();
    const json j = json::parse(text.str(), nullptr, false);
    if (j.is_discarded()) throw Error(file.string() + ": malformed JSON");
    return j;
}

// collected.json: {"tasks": [indices], "eval_run": id}
struct Ledger {
    fs::path file;
    std::set<size_t> tasks;
    int64_t eval_run = 0;
    explicit Ledger(const fs::path& dir) : file(dir / "collected.json") {
        const json j = readJson(file);
        for (const json& t : j.value("tasks", json::array())) tasks.insert(t.get<size_t>());
        eval_run = j.value("eval_run", int64_t(0));
    }
    void save() const {
        writeFileAtomically(file, json{{"tasks", tasks}, {"eval_run", eval_run}}.dump() + "\n");
    }
};

// The gate trained into the task's staging copy goes into the library's expert folder (saveGate writes
// atomically), and its training run with its curve into the database.
void collectGate(const ClusterRun& run, size_t task, ResultsStore& store, const std::string& version) {
    const ClusterManifest& m = run.manifest();
    const std::string& name = m.tasks[task].name;
    const T5Config config =
        T5Config::fromFile(fs::path(m.settings.at("model").get<std::string>()) / "config.json");
    const LoraExpert staged = loadLoraExpert(run.outputDir(task) / name, config);
    if (!staged.hasGate() || !staged.gate_record)
        throw Error((run.outputDir(task) / name).string() + ": the task finished but left no gate");
    const fs::path library_dir = fs::path(m.settings.at("experts").get<std::string>()) / name;
    saveGate(staged, library_dir);
    json settings = m.settings;
    settings["expert"] = name;
    settings["cluster_run"] = run.dir().string();
    settings["job_id"] = m.job_id;
    recordTrainingRun(store, "train-gate", name, "gate", settings.dump(), staged.gate_record->loss_curve,
                      version);
}

// The cell's own database (one eval run) into the collected run.
void collectCell(const ClusterRun& run, size_t task, ResultsStore& store, int64_t into) {
    const fs::path cell_db = run.outputDir(task) / "cell.sqlite";
    if (!fs::is_regular_file(cell_db))
        throw Error(cell_db.string() + ": the task finished but left no results");
    const ResultsStore cell(cell_db.string());
    const std::vector<RunRecord> runs = cell.runs();
    if (runs.size() != 1) throw Error(cell_db.string() + ": expected one evaluation run");
    const std::vector<PredictionRecord> predictions = cell.predictions(runs[0].id);
    for (const MetricRecord& metric : cell.metrics(runs[0].id)) {
        std::vector<PredictionRecord> own;
        for (const PredictionRecord& p : predictions)
            if (p.method == metric.method && p.top_k == metric.top_k && p.dataset == metric.dataset)
                own.push_back(p);
        store.addCell(into, metric, own);
    }
}

}  // namespace

std::set<size_t> collectedTasks(const ClusterRun& run) {
    return Ledger(run.dir()).tasks;
}

CollectReport collectRun(const ClusterRun& run, const std::string& database, const std::string& version) {
    const ClusterManifest& m = run.manifest();
    const std::vector<TaskStatus> statuses = run.statuses();
    Ledger ledger(run.dir());
    ResultsStore store(database);
    CollectReport report;
    const bool eval = m.kind == "eval";
    if (eval && ledger.eval_run == 0) {
        json settings = m.settings;
        settings["cluster_run"] = run.dir().string();
        settings["job_id"] = m.job_id;
        ledger.eval_run = store.beginRun("eval", settings.dump(), version);
        ledger.save();
    }
    for (size_t i = 0; i < statuses.size(); ++i) {
        const TaskState state = statuses[i].state;
        if (ledger.tasks.count(i)) {
            ++report.already;
        } else if (state == TaskState::Done) {
            if (eval)
                collectCell(run, i, store, ledger.eval_run);
            else
                collectGate(run, i, store, version);
            ledger.tasks.insert(i);
            ledger.save();  // after each task: an interrupted collect resumes where it stopped
            ++report.collected;
        } else if (state == TaskState::Pending || state == TaskState::Running) {
            ++report.waiting;
        } else {
            ++report.failed;
        }
    }
    if (eval) {
        report.eval_run = ledger.eval_run;
        // Finished only when every cell is home; failed or cancelled cells make the run so; while cells are
        // still to come it stays running (collect again later).
        RunStatus status = RunStatus::Running;
        if (report.waiting == 0)
            status = report.failed == 0
                         ? RunStatus::Finished
                         : (fs::exists(run.dir() / "cancelled") ? RunStatus::Cancelled : RunStatus::Failed);
        if (status != RunStatus::Running) store.finishRun(ledger.eval_run, status);
        report.eval_status = runStatusName(status);
    }
    return report;
}

}  // namespace phatgoose
