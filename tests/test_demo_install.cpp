// The user's copy of the shipped demo workspace: made once, from a read-only source, made again when the
// shipped demo changes (keeping the user's old copy once), and a clear error when it cannot be written.
#include <QTemporaryDir>
#include <QtTest>

#include <chrono>
#include <filesystem>

#include "demo/demo_install.h"
#include "error.h"
#include "fixtures/files.h"

using namespace phatgoose;
using phatgoose::testing::readFileBytes;
using phatgoose::testing::writeFileBytes;
namespace fs = std::filesystem;

class DemoInstallTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root() const { return fs::path(tmp_.path().toStdString()); }

    // A stand-in for share/phatgoose/demo, installed the way a package would: read-only folders and files.
    fs::path makeShipped(const std::string& name) {
        const fs::path dir = root() / name;
        fs::create_directories(dir / "model");
        writeFileBytes(dir / "workspace.json", R"({"name": "demo"})");
        writeFileBytes(dir / "model" / "config.json", R"({"d_model": 8})");
        setReadOnly(dir, true);
        return dir;
    }

    static void setReadOnly(const fs::path& dir, bool read_only) {
        const auto mode = [&](bool is_dir) {
            const fs::perms r = fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read;
            const fs::perms x = fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
            return (is_dir ? r | x : r) | (read_only ? fs::perms::none : fs::perms::owner_write);
        };
        for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir))
            fs::permissions(e.path(), mode(e.is_directory()));
        fs::permissions(dir, mode(true));
    }

    static bool ownerWritable(const fs::path& p) {
        return (fs::status(p).permissions() & fs::perms::owner_write) != fs::perms::none;
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(tmp_.isValid()); }

    void copiesOnceFromAReadOnlySource() {
        const fs::path shipped = makeShipped("shipped-once");
        const fs::path user = root() / "user-once";
        const fs::path copy = userDemoWorkspace(shipped, user);
        QCOMPARE(copy, user / "demo");
        QCOMPARE(readFileBytes(copy / "model" / "config.json"), std::string(R"({"d_model": 8})"));
        QVERIFY(fs::exists(copy / kDemoStampFile));
        // The copy is the user's to write, though the source was not.
        QVERIFY(ownerWritable(copy));
        QVERIFY(ownerWritable(copy / "model"));
        QVERIFY(ownerWritable(copy / "workspace.json"));
        QVERIFY(!ownerWritable(shipped / "workspace.json"));

        // The user's work survives the next start: nothing is copied again.
        writeFileBytes(copy / "workbench.sqlite", "results");
        writeFileBytes(copy / "workspace.json", R"({"name": "renamed by the user"})");
        QCOMPARE(userDemoWorkspace(shipped, user), copy);
        QCOMPARE(readFileBytes(copy / "workbench.sqlite"), std::string("results"));
        QCOMPARE(readFileBytes(copy / "workspace.json"), std::string(R"({"name": "renamed by the user"})"));
        QVERIFY(!fs::exists(user / "demo.previous"));
        // No staging folders are left behind.
        int entries = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(user)) ++entries;
        QCOMPARE(entries, 1);
        // The shipped folder was not touched.
        QVERIFY(!fs::exists(shipped / kDemoStampFile));
        QVERIFY(!fs::exists(shipped / "workbench.sqlite"));
    }

    void copiesAgainWhenTheShippedDemoChanges() {
        const fs::path shipped = makeShipped("shipped-upgrade");
        const fs::path user = root() / "user-upgrade";
        const fs::path copy = userDemoWorkspace(shipped, user);
        writeFileBytes(copy / "workbench.sqlite", "old results");

        // A package upgrade: a new file, and the manifest replaced with a newer one.
        setReadOnly(shipped, false);
        writeFileBytes(shipped / "workspace.json", R"({"name": "demo 2"})");
        fs::last_write_time(shipped / "workspace.json",
                            fs::last_write_time(shipped / "workspace.json") + std::chrono::hours(1));
        writeFileBytes(shipped / "model" / "spiece.model", "vocab");
        setReadOnly(shipped, true);

        QCOMPARE(userDemoWorkspace(shipped, user), copy);
        QCOMPARE(readFileBytes(copy / "workspace.json"), std::string(R"({"name": "demo 2"})"));
        QCOMPARE(readFileBytes(copy / "model" / "spiece.model"), std::string("vocab"));
        QVERIFY(!fs::exists(copy / "workbench.sqlite"));
        // The replaced copy is kept once, with the user's results.
        QCOMPARE(readFileBytes(user / "demo.previous" / "workbench.sqlite"), std::string("old results"));

        // A second upgrade replaces demo.previous, even when the user made part of it read-only.
        setReadOnly(user / "demo.previous", true);
        setReadOnly(shipped, false);
        writeFileBytes(shipped / "model" / "extra.json", "{}");
        setReadOnly(shipped, true);
        QCOMPARE(userDemoWorkspace(shipped, user), copy);
        QVERIFY(fs::exists(copy / "model" / "extra.json"));
        QVERIFY(fs::exists(user / "demo.previous" / "model" / "spiece.model"));
        QVERIFY(!fs::exists(user / "demo.previous" / "workbench.sqlite"));
    }

    void aMissingShippedDemoIsNamed() {
        try {
            userDemoWorkspace(root() / "nowhere", root() / "user-missing");
            QFAIL("expected an error");
        } catch (const Error& e) {
            const QString message = e.what();
            QVERIFY2(message.contains("no demo workspace") && message.contains("nowhere"), e.what());
        }
        QVERIFY(!fs::exists(root() / "user-missing"));
    }

    void anUnwritableDestinationIsAClearError() {
        const fs::path shipped = makeShipped("shipped-blocked");
        // A plain file where the user's data folder should be: no copy can be made below it (this holds
        // for root too, unlike permission bits).
        writeFileBytes(root() / "blocked", "a file");
        try {
            userDemoWorkspace(shipped, root() / "blocked" / "phatgoose");
            QFAIL("expected an error");
        } catch (const Error& e) {
            const QString message = e.what();
            QVERIFY2(message.contains("cannot copy the demo workspace") && message.contains("blocked") &&
                         message.contains("Not a directory"),
                     e.what());
        }
    }
};

QTEST_GUILESS_MAIN(DemoInstallTest)
#include "test_demo_install.moc"
