#pragma once
// The workspace's results database (docs/ARCHITECTURE.md, "Datasets and results"): one SQLite file,
// `workbench.sqlite`, holding runs, metrics, per-example predictions, loss curves and routing traces. Every
// write is a transaction, so a run killed half-way keeps everything it wrote before and stays listed as
// unfinished (finished_at NULL, status running) until the process that began it is gone: each run records
// the pid, host and start time of its process, and a running run whose process no longer exists on this host
// is reported as interrupted. The schema is versioned (PRAGMA user_version) and migrated
// forward; a newer file is refused. QtSql only: no LibTorch, no widgets.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "routing/routing_statistics.h"

namespace phatgoose {

// Interrupted is never written: it is how a run still marked running reads once its process is gone.
enum class RunStatus { Running, Finished, Failed, Cancelled, Interrupted };
std::string runStatusName(RunStatus status);  // "running", "finished", "failed", "cancelled", "interrupted"

struct RunRecord {
    int64_t id = 0;
    std::string kind;         // "eval", "train-gate", "train-expert"
    std::string started_at;   // ISO 8601, UTC
    std::string finished_at;  // "" while unfinished
    std::string status;       // runStatusName()
    std::string settings;     // JSON text
    std::string version;      // the project version that wrote it
    int64_t pid = 0;          // the process that began the run (0 in runs from schema version 1)
    std::string host;         // and its host
};

struct MetricRecord {
    std::string method;  // routing method label, e.g. "phatgoose" or "single:qa"
    int64_t top_k = 0;   // 0 where the method has no k
    std::string dataset;
    std::string metric;  // "accuracy", "exact_match", ...
    double value = 0.0;  // percent
    int64_t examples = 0;
};

struct PredictionRecord {
    std::string method;
    int64_t top_k = 0;
    std::string dataset;
    int64_t example_index = 0;  // position in the dataset
    std::string input, target, prediction;
    bool correct = false;
    double score = 0.0;  // the prediction's mean (rank) or summed (generation) log-likelihood
};

struct LossPoint {
    std::string expert;
    std::string kind;  // "gate", "expert", ...
    int64_t step = 0;
    double loss = 0.0;
};

struct TraceRecord {
    int64_t id = 0;
    std::optional<int64_t> run;  // nullopt for a trace saved on its own
    std::string name;
    std::string created_at;
    std::string json;
};

class ResultsStore {
public:
    static constexpr int kSchemaVersion = 3;

    // Opens or creates the database and migrates it to kSchemaVersion. Throws phatgoose::Error naming the
    // file when it cannot be opened or written, is not SQLite, or comes from a newer version.
    explicit ResultsStore(const std::filesystem::path& file);
    ~ResultsStore();
    ResultsStore(const ResultsStore&) = delete;
    ResultsStore& operator=(const ResultsStore&) = delete;

    const std::filesystem::path& file() const { return file_; }
    int schemaVersion() const;

    int64_t beginRun(const std::string& kind, const std::string& settings_json, const std::string& version);
    void finishRun(int64_t run, RunStatus status);
    // One method x dataset cell of an evaluation, written as one transaction.
    void addCell(int64_t run, const MetricRecord& metric, const std::vector<PredictionRecord>& predictions);
    void addLossCurve(int64_t run, const std::vector<LossPoint>& points);
    // The curve as points 1..N of `kind` ("gate", "expert", "base") for `who`; nothing for an empty curve.
    void addLossCurve(int64_t run, const std::string& who, const std::string& kind,
                      const std::vector<double>& curve);
    int64_t saveTrace(std::optional<int64_t> run, const std::string& name, const std::string& json);

    // A whole routing analysis as one "route-stats" run: begun, every dataset added, finished (cancelled when
    // the analysis was). The run's settings are `settings_json` (a JSON object) plus the statistics' method,
    // top_k and expert_names. Returns the run id.
    int64_t saveRoutingAnalysis(const RoutingStatistics& statistics, bool cancelled,
                                const std::string& settings_json, const std::string& version);
    // One dataset's routing statistics (`route-stats`), as one transaction; read back in the order written.
    void addRoutingStatistics(int64_t run, const DatasetRoutingStatistics& dataset);
    std::vector<DatasetRoutingStatistics> routingStatistics(int64_t run) const;
    std::vector<RunRecord> runs() const;  // oldest first
    std::optional<RunRecord> run(int64_t id) const;
    std::vector<MetricRecord> metrics(int64_t run) const;  // in insertion order
    std::vector<PredictionRecord> predictions(int64_t run) const;
    std::vector<LossPoint> lossCurve(int64_t run) const;
    std::vector<TraceRecord> traces(std::optional<int64_t> run = std::nullopt) const;  // nullopt: all

private:
    void configure();
    void migrate();

    std::filesystem::path file_;
    std::string connection_;  // the QSqlDatabase connection name, unique to this object
};

// A whole finished training run in one go: the run (`kind`, e.g. "train-gate"), its loss curve as points
// 1..N of `curve_kind` for `who`, and status finished. Returns the run id.
int64_t recordTrainingRun(ResultsStore& store, const std::string& kind, const std::string& who,
                          const std::string& curve_kind, const std::string& settings_json,
                          const std::vector<double>& curve, const std::string& version);

}  // namespace phatgoose
