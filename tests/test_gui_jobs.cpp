// The workbench's Slurm path against a real one-node Slurm (tests/slurm_cluster.sh), offscreen: Train gates
// with "Run on: Slurm" submits a gate array, the Jobs tab shows its tasks' states as Slurm runs them and
// collects the gates into the library by itself once they are done (the same bytes the array task wrote).
// PHATGOOSE_SCREENSHOT_DIR keeps a picture of the Jobs tab.
#include <QComboBox>
#include <QProcess>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "cluster/cluster_run.h"
#include "fixtures/files.h"
#include "fixtures/tiny_workspace.h"
#include "store/results_store.h"
#include "ui/experts/train_gate_dialog.h"
#include "ui/jobs/cluster_jobs.h"
#include "ui/jobs/jobs_view.h"
#include "ui/main_window.h"
#include "ui/results/results_view.h"

using namespace phatgoose;
namespace fs = std::filesystem;

class GuiJobsTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path cluster_dir_;

    static int script(const QString& action, const fs::path& dir, QString* out = nullptr) {
        QProcess p;
        p.start("bash", {PHATGOOSE_SLURM_SCRIPT, action, QString::fromStdString(dir.string())});
        p.waitForFinished(60000);
        if (out) *out = QString::fromUtf8(p.readAllStandardOutput()).trimmed();
        return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setApplicationName("test_gui_jobs");
        QSettings().clear();
        cluster_dir_ = fs::path(tmp_.path().toStdString()) / "slurm";
        QString conf;
        QVERIFY2(script("start", cluster_dir_, &conf) == 0,
                 "the test cluster did not start (root and Slurm's Debian packages are needed)");
        qputenv("SLURM_CONF", conf.toUtf8());
    }
    void cleanupTestCase() { script("stop", cluster_dir_); }

    void gatesRunOnSlurmAndComeHome() {
        const Workspace ws = testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "ws");
        const std::string before =
            testing::readFileBytes(ws.experts_dir / "count" / "phatgoose_gate.safetensors");
        ui::MainWindow window;
        window.resize(1300, 800);
        window.show();
        window.clusterJobs()->setProgram(qEnvironmentVariable("PHATGOOSE_BIN_DIR") + "/phatgoose");
        window.openWorkspace(QString::fromStdString(ws.root.string()));
        ui::TrainGateDialog* dialog = nullptr;
        QVERIFY(QTest::qWaitFor(
            [&] {
                dialog = window.showTrainGateDialog({"reverse", "count"});
                return dialog->checkedExperts().size() == 2;
            },
            60000));
        dialog->runOnBox()->setCurrentIndex(1);
        dialog->stepsBox()->setValue(3);
        dialog->batchBox()->setValue(4);
        dialog->start();
        QVERIFY(!dialog->isTraining());  // handed to Slurm, not trained here
        dialog->hide();
        ui::JobsView* jobs = window.jobsView();
        window.tabs()->setCurrentWidget(jobs);
        // The panel follows the run until both gates are home.
        QStringList states_seen;
        QVERIFY(QTest::qWaitFor(
            [&] {
                jobs->refresh();
                QTest::qWait(300);
                if (jobs->runs().size() != 1) return false;
                for (const ui::ClusterTaskView& t : jobs->runs()[0].tasks)
                    if (!states_seen.contains(t.state)) states_seen << t.state;
                return jobs->runs()[0].collected == 2;
            },
            240000));
        const ui::ClusterRunView run = jobs->runs()[0];
        QCOMPARE(run.kind, QString("train-gates"));
        QVERIFY(!run.job_id.isEmpty());
        QCOMPARE(run.tasks.size(), 2);
        for (const ui::ClusterTaskView& t : run.tasks) QCOMPARE(t.state, QString("done"));
        QCOMPARE(jobs->tasksTable()->rowCount(), 2);
        QCOMPARE(jobs->tasksTable()->item(0, 2)->text(), QString("done"));
        // The library holds what the array task trained.
        const ClusterRun folder = ClusterRun::open(run.dir.toStdString());
        for (size_t i = 0; i < folder.manifest().tasks.size(); ++i) {
            const std::string& name = folder.manifest().tasks[i].name;
            QVERIFY(testing::readFileBytes(ws.experts_dir / name / "phatgoose_gate.safetensors") ==
                    testing::readFileBytes(folder.outputDir(i) / name / "phatgoose_gate.safetensors"));
            const std::vector<std::string>& args = folder.manifest().tasks[i].args;
            const auto batch = std::find(args.begin(), args.end(), "--batch");
            QVERIFY(batch != args.end() && batch + 1 != args.end());
            QCOMPARE(*(batch + 1), std::string("4"));  // the dialog's batch size
        }
        QVERIFY(testing::readFileBytes(ws.experts_dir / "count" / "phatgoose_gate.safetensors") != before);
        int gate_runs = 0;
        for (const RunRecord& r : ResultsStore(ws.database).runs()) gate_runs += r.kind == "train-gate";
        QCOMPARE(gate_runs, 2);

        // New evaluation on Slurm: one array task per cell; collected by itself into ONE run of the
        // workspace's database, which the Results view then lists.
        ui::EvaluationRequest evaluation;
        evaluation.methods = {"phatgoose", "merge"};
        evaluation.datasets = {QString::fromStdString(ws.task("reverse")->test.string()),
                               QString::fromStdString(ws.task("opposite")->test.string())};
        evaluation.on_slurm = true;
        window.resultsView()->startEvaluation(evaluation);
        QVERIFY(!window.resultsView()->evaluating());
        QVERIFY(QTest::qWaitFor(
            [&] {
                jobs->refresh();
                QTest::qWait(300);
                return jobs->runs().size() == 2 && jobs->runs()[1].collected == 4;
            },
            240000));
        QCOMPARE(jobs->runs()[1].kind, QString("eval"));
        const ResultsStore store(ws.database);
        const RunRecord eval_run = store.runs().back();
        QCOMPARE(eval_run.kind, std::string("eval"));
        QCOMPARE(eval_run.status, std::string("finished"));
        QCOMPARE(store.metrics(eval_run.id).size(), size_t(4));
        QVERIFY(QTest::qWaitFor([&] { return window.resultsView()->shownRun() == eval_run.id; }, 10000));
        if (const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR"); !dir.isEmpty()) {
            QTest::qWait(200);
            QVERIFY(window.grab().save(dir + "/jobs.png"));
        }
    }
};

QTEST_MAIN(GuiJobsTest)
#include "test_gui_jobs.moc"
