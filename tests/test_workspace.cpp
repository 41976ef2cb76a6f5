// Workspaces: the manifest round-trips, a folder without one is still understood, and every broken
// workspace is refused with a message naming the file and the problem.
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>

#include "error.h"
#include "fixtures/files.h"
#include "fixtures/tiny_workspace.h"
#include "store/workspace.h"

using namespace phatgoose;
namespace fs = std::filesystem;

class WorkspaceTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root() const { return fs::path(tmp_.path().toStdString()); }

    // A fresh copy of the fixture workspace to break.
    fs::path freshCopy(const std::string& name) {
        const fs::path dir = root() / name;
        fs::copy(root() / "ws", dir, fs::copy_options::recursive);
        return dir;
    }

private Q_SLOTS:
    void initTestCase() { phatgoose::testing::writeTinyWorkspace(root() / "ws"); }

    void manifestRoundTrips() {
        const Workspace ws = openWorkspace(root() / "ws");
        QCOMPARE(QString::fromStdString(ws.name), QString("tiny test workspace"));
        QCOMPARE(ws.model_dir, root() / "ws" / "model");
        QCOMPARE(ws.experts_dir, root() / "ws" / "experts");
        QCOMPARE(ws.database, root() / "ws" / "workbench.sqlite");
        QVERIFY(ws.multitask_dir.empty());
        QCOMPARE(int(ws.tasks.size()), 4);
        QCOMPARE(int(ws.testSets().size()), 4);
        QCOMPARE(int(ws.testSets(TaskRole::HeldIn).size()), 3);
        QCOMPARE(int(ws.testSets(TaskRole::HeldOut).size()), 1);
        const WorkspaceTask* opposite = ws.task("opposite");
        QVERIFY(opposite);
        QCOMPARE(opposite->role, TaskRole::HeldOut);
        QVERIFY(opposite->multiple_choice);
        QVERIFY(opposite->train.empty());
        QCOMPARE(opposite->test, root() / "ws" / "data" / "test" / "opposite.jsonl");
        QVERIFY(ws.task("reverse")->train == root() / "ws" / "data" / "train" / "reverse.jsonl");
        QVERIFY(ws.task("nothing") == nullptr);
    }

    void folderWithoutManifestIsDiscovered() {
        const fs::path dir = freshCopy("plain");
        fs::remove(dir / "workspace.json");
        const Workspace ws = openWorkspace(dir);
        QCOMPARE(int(ws.tasks.size()), 4);
        QCOMPARE(QString::fromStdString(ws.tasks[0].name), QString("choose"));  // sorted by name
        QCOMPARE(ws.task("reverse")->role, TaskRole::HeldIn);                   // it has an expert
        QCOMPARE(ws.task("opposite")->role, TaskRole::HeldOut);
        QVERIFY(!ws.task("count")->train.empty());
    }

    void brokenWorkspaceIsRefused_data() {
        QTest::addColumn<QString>("breakage");
        QTest::addColumn<QString>("message");
        QTest::newRow("no model") << "rm model/config.json"
                                  << "no base model";
        QTest::newRow("no library") << "rm experts"
                                    << "expert library";
        QTest::newRow("not json") << "manifest {oops"
                                  << "not a JSON object";
        QTest::newRow("other format") << "manifest {\"format\": \"x\"}"
                                      << "not a PHATGOOSE workspace manifest";
        QTest::newRow("newer") << "manifest {\"format\": \"phatgoose-workspace\", \"version\": 99}"
                               << "newer";
        QTest::newRow("escaping path")
            << "manifest {\"format\": \"phatgoose-workspace\", \"model\": \"../elsewhere\"}"
            << "inside the workspace";
        QTest::newRow("bad role") << "manifest {\"format\": \"phatgoose-workspace\", \"tasks\": [{\"name\": "
                                     "\"a\", \"role\": \"x\"}]}"
                                  << "neither 'held-in' nor 'held-out'";
        QTest::newRow("missing split") << "manifest {\"format\": \"phatgoose-workspace\", \"tasks\": "
                                          "[{\"name\": \"a\", \"test\": \"data/a.jsonl\"}]}"
                                       << "does not exist";
        QTest::newRow("task without name")
            << "manifest {\"format\": \"phatgoose-workspace\", \"tasks\": [{\"role\": \"held-in\"}]}"
            << "workspace.json";
    }

    void brokenWorkspaceIsRefused() {
        QFETCH(QString, breakage);
        QFETCH(QString, message);
        const fs::path dir = freshCopy(QTest::currentDataTag());
        const std::string what = breakage.toStdString();
        if (what.rfind("rm ", 0) == 0)
            fs::remove_all(dir / what.substr(3));
        else
            phatgoose::testing::writeFileBytes(dir / "workspace.json", what.substr(9));
        try {
            openWorkspace(dir);
            QFAIL("a broken workspace was opened");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
    }

    void missingFolderIsRefused() {
        try {
            openWorkspace(root() / "absent");
            QFAIL("a missing folder was opened");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("no such workspace folder"), e.what());
        }
    }
};

QTEST_GUILESS_MAIN(WorkspaceTest)
#include "test_workspace.moc"
