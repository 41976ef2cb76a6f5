// Nothing a user owns is ever lost, one test per principle (README, "Reliability"):
// - replace only what we made: an expert folder, a workspace; anything else is refused and left untouched;
// - write new, then swap: on a full disk (a 1 MiB tmpfs as root, else a file-size limit that makes writes
//   fail the same way) saving a gate or an expert, or `train-gate --overwrite`, leaves the old files byte for
//   byte and no temporary behind; a failed `train-expert` leaves no folder;
// - signals: SIGTERM and SIGHUP stop a run as Ctrl-C does (cancel recorded), and a run whose process was
//   killed reads as interrupted;
// - bounded work: long inputs are cut at inference with a counted warning (`logits` refuses), ranks and
//   threads have upper bounds;
// - no silent choices: duplicate expert names, ungated experts, NaN options, unknown targets, empty id
//   items, duplicate keys and choices are each an error or a visible warning;
// - a workspace's paths stay inside it once symbolic links are followed.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>
#include <QDir>
#include <QElapsedTimer>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QtTest>
#include <csignal>
#include <cstring>

#include <map>

#include "atomic_file.h"
#include "data/dataset.h"
#include "demo/demo_builder.h"
#include "error.h"
#include "experts/lora_expert.h"
#include "fixtures/cli_run.h"
#include "fixtures/files.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "fixtures/tiny_workspace.h"
#include "store/results_store.h"
#include "store/workspace.h"

using namespace phatgoose;
namespace fs = std::filesystem;
using phatgoose::testing::readFileBytes;
using phatgoose::testing::writeFileBytes;
using Run = phatgoose::testing::CliRun;

namespace {

Run cli(const std::vector<std::string>& args) {
    return phatgoose::testing::runPhatgoose(args);
}

bool oneLine(const std::string& s) {
    return !s.empty() && std::count(s.begin(), s.end(), '\n') == 1;
}

// Every file below `dir` with its bytes: what "byte for byte as before" compares.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file())
            files[entry.path().lexically_relative(dir).string()] = readFileBytes(entry.path());
    return files;
}

// Names below `dir` that only an unfinished write would leave (".NAME.tmp-...").
QStringList leftovers(const fs::path& dir) {
    QStringList names;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.path().filename().string().find(".tmp-") != std::string::npos)
            names << QString::fromStdString(entry.path().string());
    return names;
}

// A folder whose disk can be filled. As root: a 1 MiB tmpfs mounted on it, filled by a file that takes
// every free byte, so writes fail with ENOSPC exactly as on a full disk. Otherwise (no root, no mount): a
// plain folder, and fill() caps this process's file size (RLIMIT_FSIZE, SIGXFSZ ignored) so that writes
// fail with EFBIG the same way. Either way unfill() gives the space back.
class FillableDisk {
public:
    explicit FillableDisk(const fs::path& dir) : dir_(dir) {
        fs::create_directories(dir_);
        mounted_ = geteuid() == 0 && ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m") == 0;
    }
    ~FillableDisk() {
        unfill();
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    const fs::path& dir() const { return dir_; }
    bool isTmpfs() const { return mounted_; }

    void fill() {
        if (mounted_) {
            const int fd = ::open((dir_ / "filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            QVERIFY(fd >= 0);
            const std::string block(4096, 'x');
            while (::write(fd, block.data(), block.size()) > 0) {
            }
            for (char c = 'x'; ::write(fd, &c, 1) > 0;) {  // the last partial block too
            }
            ::close(fd);
        } else {
            getrlimit(RLIMIT_FSIZE, &saved_);
            old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
            rlimit limit = saved_;
            limit.rlim_cur = 16;
            setrlimit(RLIMIT_FSIZE, &limit);
            limited_ = true;
        }
    }
    void unfill() {
        if (mounted_) fs::remove(dir_ / "filler");
        if (limited_) {
            setrlimit(RLIMIT_FSIZE, &saved_);
            std::signal(SIGXFSZ, old_handler_);
            limited_ = false;
        }
    }

private:
    fs::path dir_;
    bool mounted_ = false;
    bool limited_ = false;
    rlimit saved_{};
    void (*old_handler_)(int) = nullptr;
};

LoraExpert gatedExpert(const std::string& name, uint64_t seed) {
    LoraExpert e = phatgoose::testing::randomExpert(name, phatgoose::testing::tinyConfig({}), seed);
    e.gate_record = GateRecord{.steps = 3,
                               .learning_rate = 5e-3,
                               .batch_size = 4,
                               .final_loss = 1.0,
                               .dataset = "train.jsonl",
                               .loss_curve = {1.2, 1.1, 1.0}};
    e.training_record =
        TrainingRecord{.steps = 5, .final_loss = 2.0, .dataset = "train.jsonl", .loss_curve = {3.0, 2.0}};
    return e;
}

void writeLines(const fs::path& file, int count, const std::string& input = "copy these words") {
    std::string text;
    for (int i = 0; i < count; ++i)
        text += "{\"input\": \"" + input + " " + std::to_string(i) + "\", \"target\": \"w" +
                std::to_string(i) + "\"}\n";
    writeFileBytes(file, text);
}

QString binary(const char* name) {
    return QDir(qEnvironmentVariable("PHATGOOSE_BIN_DIR")).filePath(name);
}

// A CLI run in its own process, so that it can be signalled.
class CliProcess {
public:
    explicit CliProcess(const QStringList& args) {
        process_.setProgram(binary("phatgoose"));
        process_.setArguments(args);
        process_.start();
    }
    bool waitForStderr(const QString& text, int ms) {
        QElapsedTimer timer;
        timer.start();
        while (timer.elapsed() < ms) {
            process_.waitForReadyRead(200);
            err_ += QString::fromUtf8(process_.readAllStandardError());
            if (err_.contains(text)) return true;
            if (process_.state() == QProcess::NotRunning) return false;
        }
        return false;
    }
    void signal(int sig) { ::kill(pid_t(process_.processId()), sig); }
    int finish() {
        process_.waitForFinished(120000);
        err_ += QString::fromUtf8(process_.readAllStandardError());
        return process_.exitStatus() == QProcess::NormalExit ? process_.exitCode() : -1;
    }
    const QString& err() const { return err_; }

private:
    QProcess process_;
    QString err_;
};

}  // namespace

class ReliabilityTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root_, model_, data_;

    fs::path fresh(const std::string& name) {
        const fs::path p = root_ / name;
        fs::remove_all(p);
        return p;
    }

private Q_SLOTS:
    void initTestCase() {
        root_ = fs::path(tmp_.path().toStdString());
        model_ = phatgoose::testing::writeTinyT5(root_ / "model");
        data_ = root_ / "train.jsonl";
        writeLines(data_, 16);
    }

    // ---- 1. Replace only what we made ----

    void anExpertReplacesOnlyAnExpertFolder_data() {
        QTest::addColumn<QString>("contents");
        QTest::addColumn<QString>("message");
        QTest::newRow("a folder of someone's files") << "notes.txt"
                                                     << "holds no expert";
        QTest::newRow("an expert folder with a foreign file")
            << "expert+README.md"
            << "holds files that are not part of an expert (README.md)";
        QTest::newRow("a file") << "file"
                                << "exists and is not a folder";
    }
    void anExpertReplacesOnlyAnExpertFolder() {
        QFETCH(QString, contents);
        QFETCH(QString, message);
        const fs::path dir = fresh("not-ours");
        if (contents == "file") {
            writeFileBytes(dir, "precious");
        } else {
            if (contents.startsWith("expert")) saveLoraExpert(gatedExpert("not-ours", 1), dir);
            fs::create_directories(dir);
            writeFileBytes(dir / contents.section('+', -1).toStdString(), "precious");
        }
        const auto before = fs::is_directory(dir) ? snapshot(dir) : std::map<std::string, std::string>{};
        const std::string file_before = fs::is_regular_file(dir) ? readFileBytes(dir) : "";
        try {
            saveLoraExpert(gatedExpert("not-ours", 2), dir);
            QFAIL("a folder this program did not make was replaced");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
            QVERIFY2(QString(e.what()).contains(QString::fromStdString(dir.string())), e.what());
        }
        if (fs::is_directory(dir))
            QVERIFY(snapshot(dir) == before);
        else
            QCOMPARE(readFileBytes(dir), file_before);
        QVERIFY2(leftovers(root_).isEmpty(), qPrintable(leftovers(root_).join(", ")));
    }

    void anExpertReplacesItsOwnFolderWhole() {
        const fs::path dir = fresh("ours");
        saveLoraExpert(gatedExpert("ours", 1), dir);
        QVERIFY(fs::exists(dir / "phatgoose_gate.safetensors"));
        LoraExpert retrained = gatedExpert("ours", 2);
        for (auto& [path, m] : retrained.modules) m.gate = torch::Tensor();
        retrained.gate_record.reset();
        saveLoraExpert(retrained, dir);  // a retrained expert: its old gate must not survive beside it
        QVERIFY(!fs::exists(dir / "phatgoose_gate.safetensors"));
        QVERIFY(!fs::exists(dir / "phatgoose_gate.json"));
        QVERIFY(fs::exists(dir / "training_summary.json"));
        QVERIFY(leftovers(root_).isEmpty());
    }

    void demoReplaceRefusesWhatIsNotAWorkspace_data() {
        QTest::addColumn<QString>("kind");
        QTest::newRow("a home folder") << "home";
        QTest::newRow("a folder with workspace.json that is not a workspace") << "fake";
    }
    void demoReplaceRefusesWhatIsNotAWorkspace() {
        QFETCH(QString, kind);
        const fs::path home = fresh("home-" + kind.toStdString());
        fs::create_directories(home / ".config");
        writeFileBytes(home / ".config" / "settings", "mine");
        writeFileBytes(home / "thesis.tex", "years of work");
        if (kind == "fake") writeFileBytes(home / "workspace.json", "{\"format\": \"something else\"}");
        const auto before = snapshot(home);
        const Run r = cli({"demo", "build", "--quick", "--replace", "--out", home.string()});
        QCOMPARE(r.code, 1);
        QVERIFY2(oneLine(r.err) && r.err.find("replace") != std::string::npos, r.err.c_str());
        QVERIFY(snapshot(home) == before);
        QVERIFY(leftovers(root_).isEmpty());
    }

    void demoBuildLeavesSomeonesPartialFolderAlone() {
        const fs::path out = fresh("demo-out");
        const fs::path partial = root_ / "demo-out.partial";
        fs::create_directories(partial);
        writeFileBytes(partial / "keep.txt", "someone's");
        const DemoBuildReport report =
            buildDemoWorkspace({.out = out, .scale = DemoScale::quick(), .seed = 3});
        QVERIFY(fs::exists(out / "workspace.json"));
        QCOMPARE(readFileBytes(partial / "keep.txt"), std::string("someone's"));
        // --replace of a workspace it made: swapped whole, nothing left beside it.
        const Run r = cli({"demo", "build", "--quick", "--seed", "4", "--replace", "--out", out.string()});
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY(openWorkspace(out).tasks.size() > 0);
        QVERIFY2(leftovers(root_).isEmpty(), qPrintable(leftovers(root_).join(", ")));
    }

    // ---- 2. Write new, then swap (a full disk) ----

    void aFullDiskKeepsTheOldGate() {
        FillableDisk disk(root_ / "disk-gate");
        const fs::path dir = disk.dir() / "expert";
        saveLoraExpert(gatedExpert("expert", 1), dir);
        const auto before = snapshot(dir);
        disk.fill();
        LoraExpert regated = gatedExpert("expert", 9);
        try {
            saveGate(regated, dir);
            QFAIL("the gate was written on a full disk");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("phatgoose_gate"), e.what());
        }
        disk.unfill();
        QVERIFY2(snapshot(dir) == before, disk.isTmpfs() ? "tmpfs" : "file-size limit");
        QVERIFY2(leftovers(disk.dir()).isEmpty(), qPrintable(leftovers(disk.dir()).join(", ")));
    }

    void aFullDiskKeepsTheOldExpert() {
        FillableDisk disk(root_ / "disk-expert");
        const fs::path dir = disk.dir() / "expert";
        saveLoraExpert(gatedExpert("expert", 1), dir);
        const auto before = snapshot(dir);
        disk.fill();
        QVERIFY_EXCEPTION_THROWN(saveLoraExpert(gatedExpert("expert", 5), dir), Error);
        disk.unfill();
        QVERIFY(snapshot(dir) == before);
        QVERIFY2(leftovers(disk.dir()).isEmpty(), qPrintable(leftovers(disk.dir()).join(", ")));
    }

    void trainGateOverwriteOnAFullDiskKeepsBothGateFiles() {
        FillableDisk disk(root_ / "disk-cli");
        const fs::path dir = disk.dir() / "expert";
        saveLoraExpert(gatedExpert("expert", 1), dir);
        const auto before = snapshot(dir);
        disk.fill();
        const Run r = cli({"train-gate", "--model", model_.string(), "--expert", dir.string(), "--data",
                           data_.string(), "--steps", "2", "--batch", "4", "--overwrite"});
        disk.unfill();
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.find("phatgoose_gate") != std::string::npos, r.err.c_str());
        QVERIFY(snapshot(dir) == before);
        QVERIFY(leftovers(disk.dir()).isEmpty());
        // With room again the same command succeeds and both files change together.
        const Run again = cli({"train-gate", "--model", model_.string(), "--expert", dir.string(), "--data",
                               data_.string(), "--steps", "2", "--batch", "4", "--overwrite"});
        QVERIFY2(again.code == 0, again.err.c_str());
        const auto after = snapshot(dir);
        QVERIFY(after.at("phatgoose_gate.safetensors") != before.at("phatgoose_gate.safetensors"));
        QVERIFY(after.at("phatgoose_gate.json") != before.at("phatgoose_gate.json"));
        QCOMPARE(after.at("adapter_model.safetensors"), before.at("adapter_model.safetensors"));
    }

    void aFailedTrainExpertLeavesNoFolder() {
        FillableDisk disk(root_ / "disk-train");
        const fs::path out = disk.dir() / "new-expert";
        disk.fill();
        const Run r = cli({"train-expert", "--model", model_.string(), "--data", data_.string(), "--out",
                           out.string(), "--steps", "2", "--rank", "2", "--batch", "4"});
        disk.unfill();
        QCOMPARE(r.code, 1);
        QVERIFY(!fs::exists(out));
        QVERIFY2(leftovers(disk.dir()).isEmpty(), qPrintable(leftovers(disk.dir()).join(", ")));
    }

    void aFileTransactionCommitsAllOrNothing() {
        const fs::path dir = fresh("transaction");
        fs::create_directories(dir);
        writeFileBytes(dir / "a", "old a");
        writeFileBytes(dir / "b", "old b");
        writeFileBytes(dir / "c", "old c");
        {
            FileTransaction files;
            files.write(dir / "a", "new a");
            QVERIFY_EXCEPTION_THROWN(
                files.write(dir / "b", [](std::ostream&) { throw Error("disk trouble"); }), Error);
        }  // not committed
        QCOMPARE(readFileBytes(dir / "a"), std::string("old a"));
        QCOMPARE(readFileBytes(dir / "b"), std::string("old b"));
        FileTransaction files;
        files.write(dir / "a", "new a");
        files.write(dir / "b", "new b");
        files.remove(dir / "c");
        QCOMPARE(readFileBytes(dir / "a"), std::string("old a"));  // nothing moves before commit()
        files.commit();
        QCOMPARE(readFileBytes(dir / "a"), std::string("new a"));
        QCOMPARE(readFileBytes(dir / "b"), std::string("new b"));
        QVERIFY(!fs::exists(dir / "c"));
        QVERIFY(leftovers(dir).isEmpty());
    }

    // ---- 3. Signals ----

    void sigtermAndSighupCancelLikeCtrlC_data() {
        QTest::addColumn<int>("sig");
        QTest::newRow("SIGTERM") << int(SIGTERM);
        QTest::newRow("SIGHUP") << int(SIGHUP);
        QTest::newRow("SIGINT") << int(SIGINT);
    }
    void sigtermAndSighupCancelLikeCtrlC() {
        QFETCH(int, sig);
        const fs::path dir = fresh("signalled-" + std::to_string(sig));
        saveLoraExpert(gatedExpert("signalled", 1), dir);
        const auto before = snapshot(dir);
        const fs::path db = root_ / ("signals-" + std::to_string(sig) + ".sqlite");
        CliProcess p({"train-gate", "--model", QString::fromStdString(model_.string()), "--expert",
                      QString::fromStdString(dir.string()), "--data", QString::fromStdString(data_.string()),
                      "--steps", "1000000", "--batch", "2", "--overwrite", "--db",
                      QString::fromStdString(db.string())});
        QVERIFY2(p.waitForStderr("step 1/", 60000), qPrintable(p.err()));
        p.signal(sig);
        QCOMPARE(p.finish(), 1);  // a clean stop, reported: not killed by the signal
        QVERIFY2(p.err().contains("cancelled"), qPrintable(p.err()));
        QVERIFY(snapshot(dir) == before);
        const ResultsStore store(db);
        QCOMPARE(store.runs().size(), size_t(1));
        QCOMPARE(store.runs()[0].status, std::string("cancelled"));
        QVERIFY(!store.lossCurve(store.runs()[0].id).empty());
    }

    void aKilledRunReadsAsInterrupted() {
        const fs::path dir = fresh("killed");
        saveLoraExpert(gatedExpert("killed", 1), dir);
        const fs::path db = root_ / "killed.sqlite";
        CliProcess p({"train-gate", "--model", QString::fromStdString(model_.string()), "--expert",
                      QString::fromStdString(dir.string()), "--data", QString::fromStdString(data_.string()),
                      "--steps", "1000000", "--batch", "2", "--overwrite", "--db",
                      QString::fromStdString(db.string())});
        QVERIFY2(p.waitForStderr("step 1/", 60000), qPrintable(p.err()));
        {
            const ResultsStore store(db);
            QCOMPARE(store.runs().at(0).status, std::string("running"));  // its process lives
        }
        p.signal(SIGKILL);
        QCOMPARE(p.finish(), -1);
        const ResultsStore store(db);
        QCOMPARE(store.runs().at(0).status, std::string("interrupted"));
    }

    // ---- 4. Bounded work ----

    void longInputsAreCutWithACountedWarning() {
        const fs::path data = root_ / "long.jsonl";
        std::string huge;
        for (int i = 0; i < 20000; ++i) huge += "word ";
        std::string text = "{\"input\": \"" + huge + "\", \"target\": \"w\"}\n";
        text += "{\"input\": \"short\", \"target\": \"w\"}\n";
        writeFileBytes(data, text);
        const Run r = cli({"eval", "--model", model_.string(), "--data", data.string(), "--methods", "base",
                           "--max-new-tokens", "2", "--db", (root_ / "long.sqlite").string()});
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY2(r.err.find("1 of 2 inputs were cut to 512 tokens") != std::string::npos, r.err.c_str());
        const Run g = cli({"generate", "--model", model_.string(), "--max-new-tokens", "2",
                           "--max-input-tokens", "8", "one two three four five six seven eight nine ten"});
        QVERIFY2(g.code == 0, g.err.c_str());
        QVERIFY2(g.err.find("was cut to 8") != std::string::npos, g.err.c_str());
        // logits is for parity checks: it refuses instead of cutting.
        std::string ids;
        for (int i = 0; i < 600; ++i) ids += "5,";
        ids += "1";
        const Run l = cli({"logits", "--model", model_.string(), "--input-ids", ids});
        QCOMPARE(l.code, 2);
        QVERIFY2(l.err.find("more than --max-input-tokens 512") != std::string::npos, l.err.c_str());
    }

    void runningOutOfMemoryNamesTheLine() {
        // A child process with 4 GB of address space and a batch whose attention needs far more: the error
        // names the dataset line, the run is recorded as failed, and nothing crashes.
        const fs::path data = root_ / "oom.jsonl";
        std::string words;
        for (int i = 0; i < 3000; ++i) words += "apple river ";
        std::string text = "{\"input\": \"short\", \"target\": \"w\"}\n";
        for (int i = 0; i < 31; ++i) text += "{\"input\": \"" + words + "\", \"target\": \"w\"}\n";
        writeFileBytes(data, text);
        const fs::path db = root_ / "oom.sqlite";
        QProcess p;
        p.setChildProcessModifier([] {
            const rlimit limit{4ull << 30, 4ull << 30};
            setrlimit(RLIMIT_AS, &limit);
        });
        p.start(binary("phatgoose"),
                {"eval", "--model", QString::fromStdString(model_.string()), "--data",
                 QString::fromStdString(data.string()), "--methods", "base", "--batch", "32",
                 "--max-input-tokens", "100000", "--db", QString::fromStdString(db.string())});
        QVERIFY(p.waitForFinished(300000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 1);
        QVERIFY2(err.contains(QString::fromStdString(data.string()) + ":2: out of memory on the batch"),
                 qPrintable(err));
        QVERIFY2(err.contains("input tokens, the batch's longest"), qPrintable(err));
        const ResultsStore store(db);
        QCOMPARE(store.runs().at(0).status, std::string("failed"));
    }

    void boundsAndBadOptionsAreRefused_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("fragment");
        QTest::newRow("rank above the layers' size")
            << QStringList{"train-expert", "--model", "MODEL",  "--data", "DATA",
                           "--out",        "OUT",     "--rank", "100000"}
            << 1 << "a LoRA rank is at most min(d_in, d_out) = ";
        QTest::newRow("more threads than the machine has")
            << QStringList{"generate", "--model", "MODEL", "--threads", "1000", "hi"} << 2
            << "--threads must be";
        QTest::newRow("a NaN length penalty")
            << QStringList{"generate", "--model", "MODEL", "--length-penalty", "nan", "hi"} << 2
            << "--length-penalty must be a finite number";
        QTest::newRow("a NaN learning rate")
            << QStringList{"train-gate", "--model", "MODEL", "--expert", "OUT", "--lr", "nan"} << 2
            << "--lr must be a finite number";
        QTest::newRow("an unknown target")
            << QStringList{"train-expert", "--model", "MODEL",     "--data", "DATA",
                           "--out",        "OUT",     "--targets", "foo,q"}
            << 1 << "target 'foo' matches no linear layer";
        QTest::newRow("an empty id item") << QStringList{"logits", "--model", "MODEL", "--input-ids", "13,,7"}
                                          << 2 << "item 2 of '13,,7' is empty";
        QTest::newRow("a missing required option")
            << QStringList{"generate", "hi"} << 2 << "--model DIR is required";
        QTest::newRow("a malformed number")
            << QStringList{"generate", "--model", "MODEL", "--beams", "two", "hi"} << 2
            << "--beams must be an integer";
    }
    void boundsAndBadOptionsAreRefused() {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, fragment);
        const fs::path out = fresh("bounded-out");
        std::vector<std::string> argv;
        for (const QString& a : args)
            argv.push_back(a == "MODEL"  ? model_.string()
                           : a == "DATA" ? data_.string()
                           : a == "OUT"  ? out.string()
                                         : a.toStdString());
        const Run r = cli(argv);
        QCOMPARE(r.code, code);
        QVERIFY2(oneLine(r.err), r.err.c_str());
        QVERIFY2(QString::fromStdString(r.err).contains(fragment), r.err.c_str());
        QVERIFY(!fs::exists(out));
    }

    // ---- 5. No silent choices ----

    void datasetMistakesAreErrors_data() {
        QTest::addColumn<QString>("line");
        QTest::addColumn<QString>("message");
        QTest::newRow("a key twice") << R"({"input": "a", "target": "b", "target": "c"})"
                                     << R"(:1: the key "target" appears twice)";
        QTest::newRow("a nested key twice") << R"({"input": "a", "target": "b", "meta": {"x": 1, "x": 2}})"
                                            << R"(the key "x" appears twice)";
        QTest::newRow("a choice twice") << R"({"input": "a", "target": "b", "choices": ["b", "c", "b"]})"
                                        << R"("choices" holds "b" twice)";
    }
    void datasetMistakesAreErrors() {
        QFETCH(QString, line);
        QFETCH(QString, message);
        const fs::path file = root_ / "mistake.jsonl";
        writeFileBytes(file, line.toStdString() + "\n");
        try {
            loadJsonl(file);
            QFAIL("the line was accepted");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
            QVERIFY2(QString(e.what()).contains("mistake.jsonl"), e.what());
        }
    }

    void twoExpertsOfOneNameAreRefused() {
        const T5Config config = phatgoose::testing::tinyConfig({});
        saveLoraExpert(phatgoose::testing::randomExpert("same", config, 1), fresh("first") / "same");
        saveLoraExpert(phatgoose::testing::randomExpert("same", config, 2), fresh("second") / "same");
        const Run r =
            cli({"route", "--model", model_.string(), "--adapter", (root_ / "first" / "same").string(),
                 "--adapter", (root_ / "second" / "same").string(), "--top-k", "1", "hi"});
        QCOMPARE(r.code, 1);
        QVERIFY2(oneLine(r.err) && r.err.find("two experts are named 'same'") != std::string::npos,
                 r.err.c_str());
    }

    void ungatedExpertsAreNamed() {
        const T5Config config = phatgoose::testing::tinyConfig({});
        const fs::path library = fresh("half-gated");
        saveLoraExpert(phatgoose::testing::randomExpert("gated", config, 1), library / "gated");
        saveLoraExpert(phatgoose::testing::randomExpert("plain", config, 2, 4, false), library / "plain");
        const Run r = cli({"route", "--model", model_.string(), "--experts", library.string(), "--top-k", "1",
                           "--max-new-tokens", "2", "hi"});
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY2(r.err.find(
                     "warning: routing method 'phatgoose' leaves out the experts without a gate: plain (1 of "
                     "2)") != std::string::npos,
                 r.err.c_str());
        const Run strict = cli({"route", "--model", model_.string(), "--experts", library.string(), "--top-k",
                                "1", "--require-gates", "hi"});
        QCOMPARE(strict.code, 1);
        QVERIFY2(strict.err.find("these experts have no gate: plain") != std::string::npos,
                 strict.err.c_str());
    }

    // ---- 6. A workspace stays inside its folder ----

    void aSymlinkOutOfTheWorkspaceIsRefused() {
        const Workspace ws = phatgoose::testing::writeTinyWorkspace(fresh("linked-ws"));
        const fs::path elsewhere = root_ / "elsewhere.sqlite";
        { ResultsStore outside(elsewhere); }
        fs::remove(ws.database);
        fs::create_symlink(elsewhere, ws.database);
        try {
            openWorkspace(ws.root);
            QFAIL("a database outside the workspace was accepted");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("leads outside the workspace"), e.what());
        }
        // A link that stays inside is fine.
        fs::remove(ws.database);
        { ResultsStore inside(ws.root / "data" / "real.sqlite"); }
        fs::create_symlink(ws.root / "data" / "real.sqlite", ws.database);
        QCOMPARE(openWorkspace(ws.root).database, ws.database);
    }

    // ---- The programs' own front doors ----
    void theWorkbenchQuitsCleanlyOnSigtermAndSighup_data() {
        QTest::addColumn<int>("sig");
        QTest::newRow("SIGTERM") << int(SIGTERM);
        QTest::newRow("SIGHUP") << int(SIGHUP);
    }
    void theWorkbenchQuitsCleanlyOnSigtermAndSighup() {
        // Quitting through the window's own path (which cancels running work and waits for the engine
        // thread) ends the process with exit code 0, not killed by the signal.
        QFETCH(int, sig);
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("QT_QPA_PLATFORM", "offscreen");
        env.insert("XDG_CONFIG_HOME", QString::fromStdString((root_ / "gui-config").string()));
        p.setProcessEnvironment(env);
        p.start(binary("phatgoose-workbench"), {QString::fromStdString(model_.string())});
        QVERIFY(p.waitForStarted(60000));
        QTest::qWait(3000);  // past start-up, so the handler is the workbench's and not the default
        QCOMPARE(p.state(), QProcess::Running);
        ::kill(pid_t(p.processId()), sig);
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 0);
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(err.contains(QString("SIG%1 received, quitting").arg(sigabbrev_np(sig))), qPrintable(err));
    }

    void theWorkbenchAnswersHelpWithoutADisplay() {
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        for (const char* name : {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}) env.remove(name);
        p.setProcessEnvironment(env);
        p.start(binary("phatgoose-workbench"), {"--help"});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 0);
        QVERIFY(QString::fromUtf8(p.readAllStandardOutput()).contains("--probe"));
        p.start(binary("phatgoose-workbench"), {"--no-such-option"});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 2);
        QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains("no-such-option"));
    }
};

QTEST_GUILESS_MAIN(ReliabilityTest)
#include "test_reliability.moc"
