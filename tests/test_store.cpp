// The results database: round trips, crash safety (a run killed half-way), and every way opening it can
// go wrong, each a clear phatgoose::Error naming the file.
#include <sys/wait.h>
#include <unistd.h>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <random>

#include "error.h"
#include "store/results_store.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

// Runs SQL on the file through a connection of the test's own, outside the store.
void rawSql(const fs::path& file, const QString& sql) {
    {
        QSqlDatabase db = QSqlDatabase::addDatabase("QSQLITE", "test-raw");
        db.setDatabaseName(QString::fromStdString(file.string()));
        QVERIFY(db.open());
        QSqlQuery q(db);
        QVERIFY2(q.exec(sql), qPrintable(sql));
    }
    QSqlDatabase::removeDatabase("test-raw");
}

MetricRecord metric(const std::string& method, const std::string& dataset, double value) {
    return {method, 2, dataset, "accuracy", value, 3};
}

std::vector<PredictionRecord> predictions(const std::string& method, const std::string& dataset) {
    std::vector<PredictionRecord> out;
    for (int64_t i = 0; i < 3; ++i)
        out.push_back({method, 2, dataset, i, "question " + std::to_string(i), "yes", i % 2 ? "no" : "yes",
                       i % 2 == 0, -0.5 * double(i)});
    return out;
}

}  // namespace

class StoreTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    int counter_ = 0;
    fs::path freshFile() {
        return fs::path(tmp_.path().toStdString()) / ("db" + std::to_string(++counter_) + ".sqlite");
    }

private Q_SLOTS:
    void createsCurrentSchemaInWalMode() {
        const fs::path file = freshFile();
        ResultsStore store(file);
        QCOMPARE(store.schemaVersion(), ResultsStore::kSchemaVersion);
        QVERIFY(fs::exists(file));
        // Reopening an up-to-date file runs no migration and keeps the version.
        ResultsStore again(file);
        QCOMPARE(again.schemaVersion(), ResultsStore::kSchemaVersion);
        QVERIFY(fs::exists(file.string() + "-wal"));
    }

    void roundTripsEverything() {
        const fs::path file = freshFile();
        int64_t run = 0, standalone = 0;
        {
            ResultsStore store(file);
            run = store.beginRun("eval", R"({"top_k": 2})", "0.1.0");
            store.addCell(run, metric("phatgoose", "copa", 66.7), predictions("phatgoose", "copa"));
            store.addCell(run, metric("merge", "copa", 33.3), predictions("merge", "copa"));
            store.addLossCurve(run, {{"qa", "gate", 1, 0.9}, {"qa", "gate", 2, 0.7}, {"qa", "gate", 3, 0.5}});
            store.saveTrace(run, "eval trace", R"({"method": "phatgoose"})");
            standalone = store.saveTrace(std::nullopt, "by hand", "{}");
            store.finishRun(run, RunStatus::Finished);
        }
        const ResultsStore store(file);
        const auto runs = store.runs();
        QCOMPARE(runs.size(), size_t(1));
        QCOMPARE(runs[0].kind, std::string("eval"));
        QCOMPARE(runs[0].status, std::string("finished"));
        QVERIFY(!runs[0].finished_at.empty());
        QCOMPARE(runs[0].settings, std::string(R"({"top_k": 2})"));
        QCOMPARE(runs[0].version, std::string("0.1.0"));
        const auto metrics = store.metrics(run);
        QCOMPARE(metrics.size(), size_t(2));
        QCOMPARE(metrics[0].method, std::string("phatgoose"));
        QCOMPARE(metrics[0].value, 66.7);
        QCOMPARE(metrics[1].method, std::string("merge"));
        QCOMPARE(metrics[1].examples, int64_t(3));
        const auto preds = store.predictions(run);
        QCOMPARE(preds.size(), size_t(6));
        QCOMPARE(preds[1].prediction, std::string("no"));
        QCOMPARE(preds[1].correct, false);
        QCOMPARE(preds[2].correct, true);
        QCOMPARE(preds[2].score, -1.0);
        QCOMPARE(preds[2].input, std::string("question 2"));
        const auto curve = store.lossCurve(run);
        QCOMPARE(curve.size(), size_t(3));
        QCOMPARE(curve[2].step, int64_t(3));
        QCOMPARE(curve[2].loss, 0.5);
        QCOMPARE(store.traces(run).size(), size_t(1));
        const auto all = store.traces();
        QCOMPARE(all.size(), size_t(2));
        QCOMPARE(all[1].id, standalone);
        QVERIFY(!all[1].run.has_value());
        QCOMPARE(all[1].name, std::string("by hand"));
    }

    // A process killed after one committed cell: the cell survives and the run stays unfinished.
    void killedRunKeepsEarlierCells() {
        const fs::path file = freshFile();
        int64_t run = 0;
        {
            ResultsStore store(file);
            run = store.beginRun("eval", "{}", "0.1.0");
            store.addCell(run, metric("phatgoose", "copa", 50.0), predictions("phatgoose", "copa"));
        }  // no finishRun: what a kill leaves behind
        const ResultsStore store(file);
        const auto record = store.run(run);
        QVERIFY(record.has_value());
        QCOMPARE(record->status, std::string("running"));
        QVERIFY(record->finished_at.empty());
        QCOMPARE(store.metrics(run).size(), size_t(1));
        QCOMPARE(store.predictions(run).size(), size_t(3));
    }

    // A run whose process is gone reads as interrupted; one whose process lives (this one) stays running, and
    // so does one begun on another host, which this machine cannot check.
    void aRunWhoseProcessIsGoneIsInterrupted() {
        const fs::path file = freshFile();
        ResultsStore store(file);
        const int64_t mine = store.beginRun("eval", "{}", "0.1.0");
        const int64_t gone = store.beginRun("train-gate", "{}", "0.1.0");
        const int64_t elsewhere = store.beginRun("eval", "{}", "0.1.0");
        QCOMPARE(store.run(mine)->pid, int64_t(getpid()));
        QVERIFY(!store.run(mine)->host.empty());
        const pid_t child = fork();
        if (child == 0) _exit(0);
        QVERIFY(child > 0);
        int status = 0;
        QCOMPARE(waitpid(child, &status, 0), child);  // reaped: no process has this pid now
        rawSql(file, QString("UPDATE runs SET pid = %1 WHERE id = %2").arg(child).arg(gone));
        rawSql(file, QString("UPDATE runs SET host = 'another-host' WHERE id = %1").arg(elsewhere));
        // The same pid with another start time is another process: the run's own is gone.
        const int64_t reused = store.beginRun("eval", "{}", "0.1.0");
        rawSql(file, QString("UPDATE runs SET process_start = '1' WHERE id = %1").arg(reused));

        const ResultsStore reopened(file);
        QCOMPARE(reopened.run(mine)->status, std::string("running"));
        QCOMPARE(reopened.run(gone)->status, std::string("interrupted"));
        QCOMPARE(reopened.run(elsewhere)->status, std::string("running"));
        QCOMPARE(reopened.run(reused)->status, std::string("interrupted"));
        QCOMPARE(reopened.runs()[1].status, std::string("interrupted"));
        // A finished run stays finished whatever became of its process.
        store.finishRun(gone, RunStatus::Finished);
        QCOMPARE(reopened.run(gone)->status, std::string("finished"));
        QVERIFY_EXCEPTION_THROWN(store.finishRun(mine, RunStatus::Interrupted), Error);
    }

    // A version-1 database (before runs recorded their process) migrates with every run and row kept.
    void versionOneDatabaseMigrates() {
        const fs::path file = freshFile();
        rawSql(
            file,
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, started_at TEXT "
            "NOT "
            "NULL, finished_at TEXT, status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', "
            "'cancelled')), settings TEXT NOT NULL DEFAULT '{}', version TEXT NOT NULL DEFAULT '')");
        for (const char* sql :
             {"CREATE TABLE metrics (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, method TEXT "
              "NOT "
              "NULL, top_k INTEGER NOT NULL, dataset TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT "
              "NULL, "
              "examples INTEGER NOT NULL, UNIQUE (run, method, top_k, dataset, metric))",
              "CREATE TABLE predictions (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, method "
              "TEXT "
              "NOT NULL, top_k INTEGER NOT NULL, dataset TEXT NOT NULL, example INTEGER NOT NULL, input TEXT "
              "NOT "
              "NULL, target TEXT NOT NULL, prediction TEXT NOT NULL, correct INTEGER NOT NULL, score REAL "
              "NOT "
              "NULL, UNIQUE (run, method, top_k, dataset, example))",
              "CREATE TABLE loss_curves (run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, expert "
              "TEXT "
              "NOT NULL, kind TEXT NOT NULL, step INTEGER NOT NULL, loss REAL NOT NULL, UNIQUE (run, expert, "
              "kind, step))",
              "CREATE TABLE routing_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER REFERENCES "
              "runs(id) "
              "ON DELETE CASCADE, name TEXT NOT NULL, created_at TEXT NOT NULL, json TEXT NOT NULL)",
              "INSERT INTO runs (kind, started_at, finished_at, status, settings, version) VALUES ('eval', "
              "'2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z', 'finished', '{\"a\": 1}', '0.1.0')",
              "INSERT INTO runs (kind, started_at, status) VALUES ('train-gate', '2026-01-02T00:00:00.000Z', "
              "'running')",
              "INSERT INTO metrics VALUES (1, 'phatgoose', 2, 'copa', 'accuracy', 55.5, 10)",
              "INSERT INTO loss_curves VALUES (2, 'qa', 'gate', 1, 0.75)", "PRAGMA user_version=1"})
            rawSql(file, sql);
        ResultsStore store(file);
        QCOMPARE(store.schemaVersion(), ResultsStore::kSchemaVersion);
        const auto runs = store.runs();
        QCOMPARE(runs.size(), size_t(2));
        QCOMPARE(runs[0].status, std::string("finished"));
        QCOMPARE(runs[0].settings, std::string("{\"a\": 1}"));
        QCOMPARE(runs[0].finished_at, std::string("2026-01-01T00:01:00.000Z"));
        QCOMPARE(runs[1].status, std::string("running"));  // no process recorded: nothing to check
        QCOMPARE(runs[1].pid, int64_t(0));
        QCOMPARE(store.metrics(1).size(), size_t(1));
        QCOMPARE(store.metrics(1)[0].value, 55.5);
        QCOMPARE(store.lossCurve(2).size(), size_t(1));
        // The newest step's table exists and takes statistics for a run made before it.
        QVERIFY(store.routingStatistics(1).empty());
        store.addRoutingStatistics(1, {.name = "copa", .examples = 1, .sites = {}});
    }

    // Routing statistics come back as written: datasets in order, sites in order, every sum exact.
    void routingStatisticsRoundTrip() {
        const fs::path file = fs::path(tmp_.path().toStdString()) / "stats.sqlite";
        ResultsStore store(file);
        const int64_t run = store.beginRun("route-stats", R"({"method": "phatgoose"})", "test");
        const SiteStatistics enc{.site = "encoder.block.0.layer.0.SelfAttention.q",
                                 .decoder_tokens = false,
                                 .tokens = 7,
                                 .weight_sum = {0.25, 6.75, 0.0},
                                 .kept = {3, 7, 4},
                                 .top1 = {1, 6, 0},
                                 .entropy_sum = 1.125};
        const SiteStatistics dec{.site = "decoder.block.1.layer.2.DenseReluDense.wo",
                                 .decoder_tokens = true,
                                 .tokens = 2,
                                 .weight_sum = {1.5, 0.0, 0.5},
                                 .kept = {2, 0, 2},
                                 .top1 = {2, 0, 0},
                                 .entropy_sum = 0.0625};
        store.addRoutingStatistics(run, {.name = "zeta", .examples = 3, .sites = {enc, dec}});
        store.addRoutingStatistics(run, {.name = "alpha", .examples = 1, .sites = {dec}});
        store.finishRun(run, RunStatus::Finished);
        const ResultsStore again(file);
        const auto back = again.routingStatistics(run);
        QCOMPARE(back.size(), size_t(2));
        QCOMPARE(back[0].name, std::string("zeta"));
        QCOMPARE(back[0].examples, int64_t(3));
        QCOMPARE(back[1].name, std::string("alpha"));
        QCOMPARE(back[0].sites.size(), size_t(2));
        const SiteStatistics& e = back[0].sites[0];
        QCOMPARE(e.site, enc.site);
        QCOMPARE(e.decoder_tokens, false);
        QCOMPARE(e.tokens, enc.tokens);
        QCOMPARE(e.weight_sum, enc.weight_sum);
        QCOMPARE(e.kept, enc.kept);
        QCOMPARE(e.top1, enc.top1);
        QCOMPARE(e.entropy_sum, enc.entropy_sum);
        QCOMPARE(back[0].sites[1].decoder_tokens, true);
        QCOMPARE(back[1].sites[0].weight_sum, dec.weight_sum);
        // A damaged row is refused with the file, the run and the module named.
        rawSql(file, "UPDATE routing_statistics SET kept = '[1, oops' WHERE dataset = 'alpha'");
        try {
            again.routingStatistics(run);
            QFAIL("damaged statistics were read");
        } catch (const Error& err) {
            QVERIFY2(QString(err.what()).contains("stats.sqlite") &&
                         QString(err.what()).contains("damaged") &&
                         QString(err.what()).contains("DenseReluDense.wo"),
                     err.what());
        }
    }

    // A cell whose write fails half-way leaves nothing of itself behind.
    void failedCellIsRolledBack() {
        ResultsStore store(freshFile());
        const int64_t run = store.beginRun("eval", "{}", "0.1.0");
        auto duplicate = predictions("phatgoose", "copa");
        duplicate.push_back(duplicate.front());  // violates the one-prediction-per-example rule
        QVERIFY_THROWS_EXCEPTION(Error, store.addCell(run, metric("phatgoose", "copa", 50.0), duplicate));
        QCOMPARE(store.metrics(run).size(), size_t(0));
        QCOMPARE(store.predictions(run).size(), size_t(0));
    }

    void statusesAreRecorded_data() {
        QTest::addColumn<int>("status");
        QTest::addColumn<QString>("name");
        QTest::newRow("finished") << int(RunStatus::Finished) << "finished";
        QTest::newRow("failed") << int(RunStatus::Failed) << "failed";
        QTest::newRow("cancelled") << int(RunStatus::Cancelled) << "cancelled";
    }
    void statusesAreRecorded() {
        QFETCH(int, status);
        QFETCH(QString, name);
        ResultsStore store(freshFile());
        const int64_t run = store.beginRun("train-gate", "{}", "0.1.0");
        store.finishRun(run, RunStatus(status));
        QCOMPARE(QString::fromStdString(store.run(run)->status), name);
    }

    void unknownRunIsRefused() {
        ResultsStore store(freshFile());
        QVERIFY_THROWS_EXCEPTION(Error, store.finishRun(42, RunStatus::Finished));
        QVERIFY(!store.run(42).has_value());
    }

    // Bad locations and files. A read-only folder does not stop root, so "cannot write here" is tested with a
    // path inside a folder that does not exist, and with a path that is itself a folder.
    void badDatabaseIsRefused_data() {
        QTest::addColumn<QString>("setup");
        QTest::addColumn<QString>("expected");
        QTest::newRow("not SQLite") << "random-bytes"
                                    << "not a SQLite database";
        QTest::newRow("newer schema") << "newer"
                                      << "schema version 99, newer than this program's version " +
                                             QString::number(ResultsStore::kSchemaVersion);
        QTest::newRow("folder missing") << "missing-folder"
                                        << "cannot open";
        QTest::newRow("path is a folder") << "folder"
                                          << "is a folder";
    }
    void badDatabaseIsRefused() {
        QFETCH(QString, setup);
        QFETCH(QString, expected);
        fs::path file = freshFile();
        if (setup == "random-bytes") {
            std::mt19937 rng(7);
            std::ofstream out(file, std::ios::binary);
            for (int i = 0; i < 4096; ++i) out.put(char(rng() & 0xff));
        } else if (setup == "newer") {
            { ResultsStore store(file); }
            rawSql(file, "PRAGMA user_version=99");
        } else if (setup == "missing-folder") {
            file = file.parent_path() / "no-such-folder" / "workbench.sqlite";
        } else {
            fs::create_directory(file);
        }
        try {
            ResultsStore store(file);
            QFAIL("opening should have failed");
        } catch (const Error& e) {
            const QString message = e.what();
            QVERIFY2(message.contains(QString::fromStdString(file.string())), qPrintable(message));
            QVERIFY2(message.contains(expected), qPrintable(message));
        }
        // The refused open leaves no connection behind: a good file still opens.
        ResultsStore good(freshFile());
        QCOMPARE(good.schemaVersion(), ResultsStore::kSchemaVersion);
    }

    // Another program holding the write lock: the write fails with a message, after the busy timeout.
    void lockedDatabaseIsReported() {
        const fs::path file = freshFile();
        ResultsStore store(file);
        {
            QSqlDatabase db = QSqlDatabase::addDatabase("QSQLITE", "test-locker");
            db.setDatabaseName(QString::fromStdString(file.string()));
            QVERIFY(db.open());
            QSqlQuery q(db);
            QVERIFY(q.exec("BEGIN IMMEDIATE"));
            try {
                store.beginRun("eval", "{}", "0.1.0");
                QFAIL("the write should have been refused");
            } catch (const Error& e) {
                const QString message = e.what();
                QVERIFY2(message.contains("locked"), qPrintable(message));
                QVERIFY2(message.contains(QString::fromStdString(file.string())), qPrintable(message));
            }
            QVERIFY(q.exec("ROLLBACK"));
        }
        QSqlDatabase::removeDatabase("test-locker");
        QVERIFY(store.beginRun("eval", "{}", "0.1.0") > 0);
    }
};

QTEST_GUILESS_MAIN(StoreTest)
#include "test_store.moc"
