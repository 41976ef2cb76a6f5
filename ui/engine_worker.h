#pragma once
// The engine's side of the GUI: a QObject moved to a worker QThread. Requests arrive as queued slot calls,
// answers leave as signals carrying plain data (no LibTorch types). The GUI thread never runs model code.
#include <atomic>

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <filesystem>
#include <memory>
#include <optional>

#include "ui/engine_messages.h"

namespace phatgoose {
struct LibraryOpening;  // experts/expert_library.h
}

namespace phatgoose::ui {

class EngineWorker : public QObject {
    Q_OBJECT
public:
    EngineWorker();
    ~EngineWorker() override;

    // Thread-safe: called directly from the GUI thread (not queued), so it reaches a long job that is
    // running on the engine thread. Every long job clears the flag when it starts and checks it often.
    void requestCancel() { cancel_ = true; }

public Q_SLOTS:
    // Opens the workspace's model and expert library, then announces it with workspaceOpened().
    void openWorkspace(const QString& folder);
    void openModel(const QString& folder);
    void openLibrary(const QString& folder);
    void probe(const phatgoose::ui::ProbeRequest& request);

    // ---- Results view: evaluations into the workspace's results database ----
    // Runs the methods x datasets grid as one "eval" run (evaluateIntoStore, as `phatgoose eval` does).
    // Clears the cancel flag first; requestCancel() ends it between batches and the run stays, cancelled.
    void evaluate(const phatgoose::ui::EvaluationRequest& request);
    // Routing statistics over the request's datasets with the open library, stored as a route-stats run.
    // Clears the cancel flag first; requestCancel() stops between batches and keeps the finished datasets.
    void analyseRouting(const phatgoose::ui::RoutingAnalysisRequest& request);

    // ---- Experts view and training dialogs (the shell) ----
    // Emits libraryListed() with the loaded experts (empty when none).
    void listLibrary();
    // Applies the engine's compute policy (model/compute_policy.h) on the engine thread, then emits
    // computeDescribed() with the threads it set.
    void startCompute();
    // Trains the gate of each requested expert in turn. Each expert gets a "train-gate" run in the
    // workspace's results database and, once trained, its gate saved into its folder and the in-memory
    // expert updated. Clears the cancel flag first; requestCancel() stops at the next step, saving nothing
    // for that expert. Always ends with trainingFinished().
    void trainGates(const phatgoose::ui::GateTrainingRequest& request);
    // Trains a new expert into the library folder under request.name (an existing name is refused), then
    // lists the library again. Cancellation and the ending as trainGates().
    void trainExpert(const phatgoose::ui::ExpertTrainingRequest& request);

    // ---- Importing an expert library (File > Import expert library) ----
    // A best.pt is imported into request.out (experts/rthree_library.h) with progress; a folder of PEFT
    // adapters is opened as it is. Either way the library then opens, as openLibrary() does. Clears the
    // cancel flag first; requestCancel() stops between experts and leaves no library. Always ends with
    // libraryImportFinished().
    void importLibrary(const phatgoose::ui::LibraryImportRequest& request);

    // ---- Probe and Compare views ----
    // Probes the prompt under both configurations, one after the other, and emits compared().
    void compare(const phatgoose::ui::CompareRequest& request);

Q_SIGNALS:
    void busy(const QString& what);
    // While a library opens: experts done of all, GB of their weights so far. Cancel ends the opening and
    // leaves what was open before; openingCancelled() then says so.
    void openingProgress(int done, int total, double gigabytes);
    void openingCancelled();
    void idle();
    void workspaceOpened(const phatgoose::ui::WorkspaceView& workspace);
    void modelOpened(const phatgoose::ui::ModelSummaryView& summary);
    void libraryOpened(const QString& folder, const QStringList& experts);
    void probed(const phatgoose::ui::ProbeResult& result);
    void failed(const QString& message);

    // ---- Results view ----
    void evaluationProgress(qint64 done, qint64 total, const QString& method, const QString& dataset);
    // Always follows evaluate(): run is -1 when the grid was refused before a run began; status is
    // "finished", "cancelled" or "failed" (the reason then came through failed()).
    // warnings: inputs cut to the input limit, experts left out of routing (Evaluator's EvalResult::warnings)
    void evaluationFinished(qint64 run, const QString& status, const QStringList& warnings);

    // ---- Routing analysis view ----
    void routingAnalysisProgress(qint64 done, qint64 total, const QString& dataset);
    // Always follows analyseRouting(): run -1 when nothing was stored; status "finished", "cancelled" or
    // "failed" (the reason then came through failed()).
    void routingAnalysisFinished(qint64 run, const QString& status);

    // ---- Experts view and training dialogs (the shell) ----
    void libraryListed(const QList<phatgoose::ui::ExpertRowView>& experts);
    void computeDescribed(const QString& threads);
    // Emitted on the engine thread once per optimizer step; queued to the GUI.
    void trainingProgress(const phatgoose::ui::TrainingProgressView& progress);
    void trainingFinished(const phatgoose::ui::TrainingOutcomeView& outcome);

    // ---- Importing an expert library ----
    void libraryImportProgress(const phatgoose::ui::LibraryImportProgressView& progress);
    void libraryImportFinished(const phatgoose::ui::LibraryImportOutcomeView& outcome);

    // ---- Probe and Compare views ----
    void compared(const phatgoose::ui::CompareResult& result);

private:
    // The database a training run is recorded in: the workspace's, when saving.
    std::optional<std::filesystem::path> runDatabase(bool save) const;
    // Emits libraryOpened() with the names of the loaded experts.
    void announceLibrary(const QString& folder);
    // Progress signals and the Cancel flag for opening a library (clears the flag).
    phatgoose::LibraryOpening opening();
    void reportOpeningFailure(const std::exception& e);
    struct Engine;  // the loaded model and experts; LibTorch stays in the .cpp
    ProbeResult runProbe(const ProbeRequest& request);  // the Probe and Compare views' common step
    std::unique_ptr<Engine> engine_;
    std::atomic<bool> cancel_{false};
};

}  // namespace phatgoose::ui
