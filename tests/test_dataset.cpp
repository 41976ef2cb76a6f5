// JSON Lines datasets: what a good file gives, and the file:line message for every kind of bad line.
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include "data/dataset.h"
#include "error.h"

using namespace phatgoose;
namespace fs = std::filesystem;

class DatasetTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path path = fs::path(tmp_.path().toStdString()) / name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    // The message of the Error that loading `path` throws, or "" when it loads.
    static std::string loadError(const fs::path& path, bool skip_bad = false) {
        try {
            loadJsonl(path, skip_bad);
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    }

private Q_SLOTS:
    void readsExamplesWithLineNumbers() {
        const fs::path path =
            write("sorting.jsonl",
                  "{\"input\": \"sort these numbers 3 1\", \"target\": \"1 3\"}\n"
                  "\n"
                  "   \r\n"
                  "{\"input\": \"is it\", \"target\": \"yes\", \"choices\": [\"yes\", \"no\"], "
                  "\"task\": \"qa\", \"id\": 7}\r\n"
                  "{\"input\": \"which\", \"choices\": [\"a\", \"b\", \"c\"]}");
        const Dataset d = loadJsonl(path);
        QCOMPARE(d.name, std::string("sorting"));
        QCOMPARE(d.path, path);
        QCOMPARE(d.skipped_lines, int64_t(0));
        QCOMPARE(d.examples.size(), size_t(3));
        QCOMPARE(d.examples[0].input, std::string("sort these numbers 3 1"));
        QCOMPARE(d.examples[0].target, std::string("1 3"));
        QVERIFY(d.examples[0].choices.empty());
        QCOMPARE(d.examples[0].task, std::string("sorting"));  // the file stem by default
        QCOMPARE(d.examples[0].line, int64_t(1));
        QCOMPARE(d.examples[1].choices, (std::vector<std::string>{"yes", "no"}));
        QCOMPARE(d.examples[1].task, std::string("qa"));
        QCOMPARE(d.examples[1].line, int64_t(4));
        // An unlabelled multiple-choice example is valid data for evaluation.
        QCOMPARE(d.examples[2].target, std::string());
        QCOMPARE(d.examples[2].choices.size(), size_t(3));
        QCOMPARE(exampleLocation(d, d.examples[1]), path.string() + ":4");
    }

    void badLineNamesFileAndLine_data() {
        QTest::addColumn<QString>("line");
        QTest::addColumn<QString>("problem");
        QTest::newRow("malformed JSON")
            << QString(R"({"input": "x", "target": )") << QString("malformed JSON");
        QTest::newRow("truncated string") << QString("{\"input\": \"x") << QString("malformed JSON");
        QTest::newRow("not an object")
            << QString(R"(["input", "target"])") << QString("expected a JSON object, got array");
        QTest::newRow("missing input") << QString(R"({"target": "y"})") << QString("missing \"input\"");
        QTest::newRow("missing target") << QString(R"({"input": "x"})") << QString("missing \"target\"");
        QTest::newRow("input not a string")
            << QString(R"({"input": 5, "target": "y"})") << QString("\"input\" must be a string");
        QTest::newRow("target not a string")
            << QString(R"({"input": "x", "target": ["y"]})") << QString("\"target\" must be a string");
        QTest::newRow("null target") << QString(R"({"input": "x", "target": null})")
                                     << QString("\"target\" must be a string");
        QTest::newRow("task not a string")
            << QString(R"({"input": "x", "target": "y", "task": 3})") << QString("\"task\" must be a string");
        QTest::newRow("choices not an array") << QString(R"({"input": "x", "target": "y", "choices": "y"})")
                                              << QString("\"choices\" must be an array");
        QTest::newRow("one choice") << QString(R"({"input": "x", "target": "y", "choices": ["y"]})")
                                    << QString("at least two");
        QTest::newRow("no choices") << QString(R"({"input": "x", "target": "y", "choices": []})")
                                    << QString("at least two");
        QTest::newRow("choice not a string")
            << QString(R"({"input": "x", "target": "y", "choices": ["y", 2]})")
            << QString("\"choices\" must hold strings");
        QTest::newRow("target not a choice")
            << QString(R"({"input": "x", "target": "z", "choices": ["y", "n"]})")
            << QString("not one of the choices");
    }
    void badLineNamesFileAndLine() {
        QFETCH(QString, line);
        QFETCH(QString, problem);
        const fs::path path =
            write("bad.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n\n" + line.toStdString() + "\n");
        const std::string message = loadError(path);
        QVERIFY2(message.rfind(path.string() + ":3: ", 0) == 0, message.c_str());
        QVERIFY2(message.find(problem.toStdString()) != std::string::npos, message.c_str());
        QVERIFY2(message.find('\n') == std::string::npos, message.c_str());
    }

    void skipBadCountsSkippedLines() {
        const fs::path path = write("mixed.jsonl",
                                    "{\"input\": \"a\", \"target\": \"b\"}\n"
                                    "{oops\n"
                                    "{\"input\": \"a\"}\n"
                                    "\n"
                                    "{\"input\": \"c\", \"target\": \"d\", \"choices\": [\"d\"]}\n"
                                    "{\"input\": \"e\", \"target\": \"f\"}\n");
        QVERIFY(loadError(path).rfind(path.string() + ":2: malformed JSON", 0) == 0);
        const Dataset d = loadJsonl(path, /*skip_bad=*/true);
        QCOMPARE(d.examples.size(), size_t(2));
        QCOMPARE(d.skipped_lines, int64_t(3));
        QCOMPARE(d.examples[1].line, int64_t(6));
    }

    void emptyDatasetIsAnError_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("skip_bad");
        QTest::newRow("empty file") << QString() << false;
        QTest::newRow("blank lines") << QString("\n  \n\t\n") << false;
        QTest::newRow("every line skipped") << QString("{bad\n[1]\n") << true;
    }
    void emptyDatasetIsAnError() {
        QFETCH(QString, text);
        QFETCH(bool, skip_bad);
        const fs::path path = write("empty.jsonl", text.toStdString());
        const std::string message = loadError(path, skip_bad);
        QVERIFY2(message.rfind(path.string() + ": the dataset holds no examples", 0) == 0, message.c_str());
    }

    void missingFileIsAnError() {
        const fs::path path = fs::path(tmp_.path().toStdString()) / "absent.jsonl";
        QVERIFY(loadError(path).rfind(path.string() + ": cannot open", 0) == 0);
    }
};

QTEST_GUILESS_MAIN(DatasetTest)
#include "test_dataset.moc"
