#pragma once
// The workbench's side of cluster runs (backend/cluster), living on the engine thread beside EngineWorker so
// that Slurm's clients and the run folders are never waited for on the GUI thread: submitting a gate array,
// polling the workspace's runs (workspace/cluster/*), cancelling one, and collecting one into the workspace's
// library and database — automatically once none of its tasks is pending or running.
#include <QList>
#include <QObject>

#include "ui/engine_messages.h"

namespace phatgoose::ui {

class ClusterJobs : public QObject {
    Q_OBJECT
public:
    // The `phatgoose` program array tasks run (default: the one beside this program).
    void setProgram(const QString& phatgoose) { program_ = phatgoose; }

public Q_SLOTS:
    void submitGates(const phatgoose::ui::ClusterGatesRequest& request);
    void submitEvaluation(const phatgoose::ui::ClusterEvalRequest& request);
    // Lists every run under `workspace_root`/cluster with its tasks' states; collects finished runs into
    // `database` (and the library their manifest names) when nothing of them is still to come.
    void poll(const QString& workspace_root, const QString& database);
    void cancel(const QString& run_dir);
    void collect(const QString& run_dir, const QString& database);

Q_SIGNALS:
    void submitted(const QString& run_dir, const QString& job_id);
    void polled(const QList<phatgoose::ui::ClusterRunView>& runs);
    void collected(const QString& run_dir, const QString& summary);
    void failed(const QString& message);

private:
    QString program_;
};

}  // namespace phatgoose::ui
