// `phatgoose cluster` against a real Slurm: a one-node cluster started by the suite (tests/slurm_cluster.sh).
// Gates trained by an array equal gates trained locally with the same settings, bit for bit; an eval grid
// collected from its cells equals a local `eval`; a failing task is reported with its log while the others
// are collected; cancel stops pending tasks; collect is idempotent.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/cluster_run.h"
#include "fixtures/cli_run.h"
#include "fixtures/files.h"
#include "fixtures/tiny_workspace.h"
#include "store/results_store.h"

using namespace phatgoose;
namespace fs = std::filesystem;
using phatgoose::testing::runPhatgoose;

namespace {

std::string phatgooseBinary() {
    return (fs::path(qEnvironmentVariable("PHATGOOSE_BIN_DIR").toStdString()) / "phatgoose").string();
}

// Polls `cluster status` until no task is pending or running (or the time is up).
bool waitForRun(const fs::path& run_dir, int seconds) {
    for (int i = 0; i < seconds * 5; ++i) {
        bool busy = false;
        for (const TaskStatus& s : ClusterRun::open(run_dir).statuses())
            busy = busy || s.state == TaskState::Pending || s.state == TaskState::Running;
        if (!busy) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
}

}  // namespace

class ClusterTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path cluster_dir_;
    Workspace ws_;

    fs::path root() const { return fs::path(tmp_.path().toStdString()); }
    static int script(const QString& action, const fs::path& dir, QString* out = nullptr) {
        QProcess p;
        p.start("bash", {PHATGOOSE_SLURM_SCRIPT, action, QString::fromStdString(dir.string())});
        p.waitForFinished(60000);
        if (out) *out = QString::fromUtf8(p.readAllStandardOutput()).trimmed();
        if (p.exitCode() != 0) qWarning("%s", p.readAllStandardError().constData());
        return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    }
    std::vector<std::string> submitArgs(const char* action, const fs::path& run_dir) const {
        return {"cluster",     action,
                "--model",     ws_.model_dir.string(),
                "--experts",   ws_.experts_dir.string(),
                "--run-dir",   run_dir.string(),
                "--phatgoose", phatgooseBinary()};
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(tmp_.isValid());
        cluster_dir_ = root() / "slurm";
        QString conf;
        QVERIFY2(script("start", cluster_dir_, &conf) == 0,
                 "the test cluster did not start (root and Slurm's Debian packages are needed)");
        qputenv("SLURM_CONF", conf.toUtf8());
        ws_ = testing::writeTinyWorkspace(root() / "ws");
    }
    void cleanupTestCase() { script("stop", cluster_dir_); }

    void dryRunPrintsTheScriptAndWritesNothing() {
        std::vector<std::string> args = submitArgs("train-gates", root() / "dry");
        args.insert(args.end(), {"--dry-run", "--partition", "debug", "--time", "00:10:00", "--cpus", "1"});
        const auto r = runPhatgoose(args);
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY(r.out.find("#SBATCH --array=0-2") != std::string::npos);
        QVERIFY(r.out.find("#SBATCH --partition=debug") != std::string::npos);
        QVERIFY(r.out.find("#SBATCH --time=00:10:00") != std::string::npos);
        QVERIFY(r.out.find("cluster run-task") != std::string::npos);
        QVERIFY(!fs::exists(root() / "dry"));
    }

    // Three gates as an array: each collected gate file equals the one `train-gate` writes locally from the
    // same expert, data and settings.
    void gateArrayEqualsLocalTraining() {
        const fs::path run_dir = root() / "gates";
        std::vector<std::string> args = submitArgs("train-gates", run_dir);
        args.insert(args.end(), {"--steps", "4", "--batch", "4", "--seed", "3"});
        const auto submitted = runPhatgoose(args);
        QVERIFY2(submitted.code == 0, submitted.err.c_str());
        QVERIFY(waitForRun(run_dir, 300));
        const ClusterRun run = ClusterRun::open(run_dir);
        QCOMPARE(run.manifest().tasks.size(), size_t(3));
        for (const TaskStatus& s : run.statuses()) QCOMPARE(taskStateName(s.state), std::string("done"));
        // The local reference: the same command on a copy of each expert.
        std::map<std::string, std::string> local;
        for (const ClusterTask& t : run.manifest().tasks) {
            const fs::path copy = root() / "local" / t.name;
            fs::create_directories(copy.parent_path());
            fs::copy(ws_.experts_dir / t.name, copy, fs::copy_options::recursive);
            std::vector<std::string> command = t.args;
            command[4] = copy.string();  // --expert
            const auto r = runPhatgoose(command);
            QVERIFY2(r.code == 0, r.err.c_str());
            local[t.name] = testing::readFileBytes(copy / "phatgoose_gate.safetensors");
        }
        const auto collected = runPhatgoose(
            {"cluster", "collect", "--run-dir", run_dir.string(), "--db", ws_.database.string()});
        QVERIFY2(collected.code == 0, collected.err.c_str());
        for (const auto& [name, bytes] : local)
            QVERIFY2(testing::readFileBytes(ws_.experts_dir / name / "phatgoose_gate.safetensors") == bytes,
                     name.c_str());
        const ResultsStore store(ws_.database);
        int gate_runs = 0;
        for (const RunRecord& r : store.runs()) gate_runs += r.kind == "train-gate";
        QCOMPARE(gate_runs, 3);
        // Collecting again brings nothing new.
        const auto again = runPhatgoose(
            {"cluster", "collect", "--run-dir", run_dir.string(), "--db", ws_.database.string()});
        QVERIFY(again.out.find("collected 0 task(s) now, 3 before") != std::string::npos);
        gate_runs = 0;
        for (const RunRecord& r : ResultsStore(ws_.database).runs()) gate_runs += r.kind == "train-gate";
        QCOMPARE(gate_runs, 3);
    }

    // An eval grid: the collected run holds the metrics and predictions of a local `eval`; a dataset that
    // cannot be read fails its cells, `status` shows their log, and the others are collected.
    void evalGridEqualsLocalEval() {
        const fs::path broken = root() / "broken.jsonl";
        testing::writeFileBytes(broken, "{\"input\": \"x\", \"target\": \"y\"}\nnot json\n");
        const fs::path run_dir = root() / "grid";
        std::vector<std::string> args = submitArgs("eval", run_dir);
        const std::string reverse = ws_.task("reverse")->test.string(),
                          opposite = ws_.task("opposite")->test.string();
        args.insert(args.end(), {"--methods", "phatgoose,merge", "--data", reverse, "--data", opposite,
                                 "--data", broken.string()});
        const auto submitted = runPhatgoose(args);
        QVERIFY2(submitted.code == 0, submitted.err.c_str());
        QVERIFY(waitForRun(run_dir, 300));
        const auto shown = runPhatgoose({"cluster", "status", "--run-dir", run_dir.string()});
        QVERIFY2(shown.out.find("failed") != std::string::npos &&
                     shown.out.find("broken.jsonl") != std::string::npos,
                 shown.out.c_str());
        const fs::path db = root() / "grid.sqlite";
        const auto collected =
            runPhatgoose({"cluster", "collect", "--run-dir", run_dir.string(), "--db", db.string()});
        QVERIFY2(collected.code == 0, collected.err.c_str());
        QVERIFY2(collected.out.find("collected 4 task(s) now") != std::string::npos, collected.out.c_str());
        QVERIFY2(collected.out.find("2 failed") != std::string::npos, collected.out.c_str());

        const fs::path local_db = root() / "local-grid.sqlite";
        const auto local = runPhatgoose({"eval", "--model", ws_.model_dir.string(), "--experts",
                                         ws_.experts_dir.string(), "--data", reverse, "--data", opposite,
                                         "--methods", "phatgoose,merge", "--db", local_db.string()});
        QVERIFY2(local.code == 0, local.err.c_str());
        const ResultsStore a(db), b(local_db);
        const int64_t ra = a.runs().back().id, rb = b.runs().back().id;
        QCOMPARE(a.runs().back().status, std::string("failed"));
        auto key = [](const MetricRecord& m) {
            return m.method + "|" + std::to_string(m.top_k) + "|" + m.dataset;
        };
        std::map<std::string, double> ma, mb;
        for (const MetricRecord& m : a.metrics(ra)) ma[key(m)] = m.value;
        for (const MetricRecord& m : b.metrics(rb)) mb[key(m)] = m.value;
        QCOMPARE(ma, mb);
        auto pkey = [](const PredictionRecord& p) {
            return p.method + "|" + p.dataset + "|" + std::to_string(p.example_index) + "|" + p.prediction +
                   "|" + std::to_string(p.correct);
        };
        std::set<std::string> pa, pb;
        for (const PredictionRecord& p : a.predictions(ra)) pa.insert(pkey(p));
        for (const PredictionRecord& p : b.predictions(rb)) pb.insert(pkey(p));
        QCOMPARE(pa, pb);
    }

    // Cancel: the tasks still queued or running are cancelled and collect keeps only finished ones (none).
    void cancelStopsTheRun() {
        const fs::path run_dir = root() / "cancelled";
        std::vector<std::string> args = submitArgs("train-gates", run_dir);
        args.insert(args.end(), {"--steps", "1000000", "--batch", "2"});
        QCOMPARE(runPhatgoose(args).code, 0);
        QVERIFY(QTest::qWaitFor(
            [&] {
                for (const TaskStatus& s : ClusterRun::open(run_dir).statuses())
                    if (s.state == TaskState::Running) return true;
                return false;
            },
            60000));
        const auto cancelled = runPhatgoose({"cluster", "cancel", "--run-dir", run_dir.string()});
        QVERIFY2(cancelled.code == 0, cancelled.err.c_str());
        QVERIFY(waitForRun(run_dir, 60));
        for (const TaskStatus& s : ClusterRun::open(run_dir).statuses())
            QCOMPARE(taskStateName(s.state), std::string("cancelled"));  // running ones included
        const std::string before =
            testing::readFileBytes(ws_.experts_dir / "reverse" / "phatgoose_gate.safetensors");
        const auto collected = runPhatgoose(
            {"cluster", "collect", "--run-dir", run_dir.string(), "--db", (root() / "c.sqlite").string()});
        QVERIFY2(collected.out.find("collected 0 task(s) now") != std::string::npos, collected.out.c_str());
        QVERIFY(testing::readFileBytes(ws_.experts_dir / "reverse" / "phatgoose_gate.safetensors") == before);
    }

    void badUseIsRefused() {
        QCOMPARE(runPhatgoose({"cluster", "fly"}).code, 2);
        const auto missing = runPhatgoose({"cluster", "status", "--run-dir", (root() / "nothing").string()});
        QCOMPARE(missing.code, 1);
        QVERIFY(missing.err.find("not a cluster run folder") != std::string::npos);
        // A submission Slurm refuses (no such partition) leaves no run folder.
        std::vector<std::string> refused = submitArgs("train-gates", root() / "refused");
        refused.insert(refused.end(), {"--partition", "nowhere"});
        const auto r = runPhatgoose(refused);
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.find("sbatch failed") != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(root() / "refused"));
        std::vector<std::string> args = submitArgs("train-gates", root() / "unknown");
        args.insert(args.end(), {"--only", "nobody"});
        const auto unknown = runPhatgoose(args);
        QCOMPARE(unknown.code, 1);
        QVERIFY(unknown.err.find("no expert 'nobody'") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(ClusterTest)
#include "test_cluster.moc"
