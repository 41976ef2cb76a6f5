#include "ui/jobs/cluster_jobs.h"

#include <QDateTime>
#include <QDir>
#include <algorithm>
#include <filesystem>

#include "cluster/cluster_collect.h"
#include "cluster/cluster_plans.h"
#include "cluster/cluster_run.h"
#include "error.h"
#include "version.h"

namespace phatgoose::ui {
namespace fs = std::filesystem;

namespace {

QString firstLine(const std::exception& e) {
    return QString::fromUtf8(e.what()).section('\n', 0, 0);
}

// What train-gate is told: the dialog's settings, all of them, so the array trains what the dialog shows.
std::vector<std::pair<std::string, std::string>> gateOptions(const TrainingOptions& o) {
    std::vector<std::pair<std::string, std::string>> out = {
        {"steps", std::to_string(o.steps)},
        {"lr", QString::number(o.learning_rate, 'g', 17).toStdString()},
        {"batch", std::to_string(o.batch_size)},
        {"accum", std::to_string(o.accumulation_steps)},
        {"seed", std::to_string(o.seed)}};
    if (o.dropout >= 0) out.emplace_back("dropout", QString::number(o.dropout, 'g', 17).toStdString());
    return out;
}

SlurmOptions slurmOptions(const SlurmSettings& s) {
    return {s.partition.toStdString(), s.time.toStdString(),  s.mem.toStdString(),
            s.account.toStdString(),   s.extra.toStdString(), s.cpus};
}

fs::path newRunFolder(const QString& workspace_root, const char* kind) {
    return fs::path(workspace_root.toStdString()) / "cluster" /
           (QDateTime::currentDateTime().toString("yyyyMMdd-HHmmss-zzz").toStdString() + "-" + kind);
}

}  // namespace

void ClusterJobs::submitGates(const ClusterGatesRequest& r) {
    try {
        const std::string program =
            program_.isEmpty() ? phatgooseBesideThisProgram() : program_.toStdString();
        if (program.empty()) throw Error("the phatgoose program is not beside the workbench");
        GateArrayPlan plan{r.model_dir.toStdString(),
                           r.experts_dir.toStdString(),
                           {},
                           r.dataset.toStdString(),
                           gateOptions(r.options)};
        for (const QString& e : r.experts) plan.only.push_back(e.toStdString());
        const fs::path dir = newRunFolder(r.workspace_root, "train-gates");
        const ClusterRun run =
            ClusterRun::createAndSubmit(dir, gateArrayManifest(plan, dir, program, slurmOptions(r.slurm)));
        Q_EMIT submitted(QString::fromStdString(dir.string()), QString::fromStdString(run.manifest().job_id));
    } catch (const std::exception& e) {
        Q_EMIT failed(tr("Submitting to Slurm failed: %1").arg(firstLine(e)));
    }
}

void ClusterJobs::submitEvaluation(const ClusterEvalRequest& r) {
    try {
        const std::string program =
            program_.isEmpty() ? phatgooseBesideThisProgram() : program_.toStdString();
        if (program.empty()) throw Error("the phatgoose program is not beside the workbench");
        EvalGridPlan plan{r.model_dir.toStdString(), r.experts_dir.toStdString(), {}, {}, r.evaluation.top_k};
        for (const QString& d : r.evaluation.datasets) plan.data.push_back(d.toStdString());
        for (const QString& m : r.evaluation.methods) plan.methods.push_back(m.toStdString());
        const fs::path dir = newRunFolder(r.workspace_root, "eval");
        const ClusterRun run = ClusterRun::createAndSubmit(
            dir, evalGridManifest(plan, dir, program, slurmOptions(r.evaluation.slurm)));
        Q_EMIT submitted(QString::fromStdString(dir.string()), QString::fromStdString(run.manifest().job_id));
    } catch (const std::exception& e) {
        Q_EMIT failed(tr("Submitting to Slurm failed: %1").arg(firstLine(e)));
    }
}

void ClusterJobs::poll(const QString& workspace_root, const QString& database) {
    QList<ClusterRunView> runs;
    const QDir folder(workspace_root + "/cluster");
    for (const QString& name : folder.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) {
        ClusterRunView view{
            .dir = folder.filePath(name), .kind = {}, .job_id = {}, .tasks = {}, .collected = 0, .error = {}};
        try {
            const ClusterRun run = ClusterRun::open(view.dir.toStdString());
            view.kind = QString::fromStdString(run.manifest().kind);
            view.job_id = QString::fromStdString(run.manifest().job_id);
            const std::vector<TaskStatus> statuses = run.statuses();
            bool ended = true;
            for (size_t i = 0; i < statuses.size(); ++i) {
                view.tasks.append({QString::fromStdString(run.manifest().tasks[i].name),
                                   QString::fromStdString(taskStateName(statuses[i].state)),
                                   QString::fromStdString(statuses[i].log_tail)});
                ended = ended && statuses[i].state != TaskState::Pending &&
                        statuses[i].state != TaskState::Running;
            }
            size_t home = collectedTasks(run).size();
            const size_t done =
                size_t(std::count_if(statuses.begin(), statuses.end(),
                                     [](const TaskStatus& s) { return s.state == TaskState::Done; }));
            if (ended && home < done && !database.isEmpty()) {
                const CollectReport report = collectRun(run, database.toStdString(), PHATGOOSE_VERSION);
                home += size_t(report.collected);
                Q_EMIT collected(view.dir, tr("collected %1 task(s)").arg(report.collected));
            }
            view.collected = qint64(home);
        } catch (const std::exception& e) {
            view.error = firstLine(e);
        }
        runs.append(view);
    }
    Q_EMIT polled(runs);
}

void ClusterJobs::cancel(const QString& run_dir) {
    try {
        ClusterRun run = ClusterRun::open(run_dir.toStdString());
        run.cancel();
    } catch (const std::exception& e) {
        Q_EMIT failed(tr("Cancelling %1 failed: %2").arg(run_dir, firstLine(e)));
    }
}

void ClusterJobs::collect(const QString& run_dir, const QString& database) {
    try {
        const CollectReport r =
            collectRun(ClusterRun::open(run_dir.toStdString()), database.toStdString(), PHATGOOSE_VERSION);
        Q_EMIT collected(run_dir, tr("collected %1 task(s) now, %2 before; %3 still to come, %4 failed or "
                                     "cancelled")
                                      .arg(r.collected)
                                      .arg(r.already)
                                      .arg(r.waiting)
                                      .arg(r.failed));
    } catch (const std::exception& e) {
        Q_EMIT failed(tr("Collecting %1 failed: %2").arg(run_dir, firstLine(e)));
    }
}

}  // namespace phatgoose::ui
