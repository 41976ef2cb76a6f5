// The `phatgoose` subcommands through runCli, as a user or a script calls them: output formats, exit codes
// and one-line errors.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "fixtures/tiny_t5.h"
#include "reference_case.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

struct Run {
    int code;
    std::string out, err;
};

Run cli(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    const int code = runCli(args, out, err);
    return {code, out.str(), err.str()};
}

std::string join(const std::vector<int64_t>& ids) {
    std::string s;
    for (int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
}

double maxAbsDiff(const nlohmann::json& rows, const std::vector<float>& flat) {
    double diff = 0;
    size_t i = 0;
    for (const auto& row : rows)
        for (const auto& v : row) diff = std::max(diff, std::abs(v.get<double>() - double(flat.at(i++))));
    return i == flat.size() ? diff : 1e30;
}

}  // namespace

class CliTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string tiny_;

private Q_SLOTS:
    void initTestCase() { tiny_ = phatgoose::testing::writeTinyT5(fs::path(tmp_.path().toStdString()) / "tiny").string(); }

    // `phatgoose logits` is the form outside parity checks use: it must reproduce the reference outputs.
    void logitsMatchReference_data() {
        QTest::addColumn<QString>("name");
        for (const auto& n : phatgoose::testing::referenceCaseNames()) QTest::newRow(n.c_str()) << QString::fromStdString(n);
    }
    void logitsMatchReference() {
        QFETCH(QString, name);
        auto ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        Run r = cli({"logits", "--model", (ref.dir / "model").string(), "--input-ids", join(ref.input_ids),
                     "--decoder-ids", join(ref.decoder_input_ids), "--greedy", std::to_string(ref.max_new_tokens)});
        QCOMPARE(r.code, 0);
        QCOMPARE(std::count(r.out.begin(), r.out.end(), '\n'), 1L);  // one JSON object, one line
        auto j = nlohmann::json::parse(r.out);
        QVERIFY(maxAbsDiff(j.at("logits"), ref.base.logits) < 1e-4);
        QVERIFY(maxAbsDiff(j.at("encoder_last_hidden_state"), ref.base.encoder_last_hidden_state) < 1e-4);
        QCOMPARE(j.at("greedy_ids").get<std::vector<int64_t>>(), ref.base.greedy_ids);
    }

    void tokenizeShowsIdsAndPieces() {
        auto ref = phatgoose::testing::loadReferenceCase("t5v10_relu_tied");
        Run r = cli({"tokenize", "--json", "--model", (ref.dir / "model").string(), ref.text});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out);
        QCOMPARE(j.at("ids").get<std::vector<int64_t>>(), ref.input_ids);
        auto pieces = j.at("pieces").get<std::vector<std::string>>();
        QCOMPARE(std::vector<std::string>(pieces.begin(), pieces.end() - 1), ref.text_pieces);
    }

    void infoSummarises() {
        Run r = cli({"info", "--json", tiny_});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out);
        QCOMPARE(j.at("d_model").get<int>(), 32);
        QCOMPARE(j.at("weight_dtype").get<std::string>(), std::string("F32"));
        QVERIFY(j.at("parameters").get<int64_t>() > 0);
    }

    void generateAgreesWithBeams() {
        Run greedy = cli({"generate", "--json", "--model", tiny_, "--max-new-tokens", "8", "count the letters"});
        Run beam = cli({"generate", "--json", "--model", tiny_, "--max-new-tokens", "8", "--beams", "1", "count the letters"});
        QCOMPARE(greedy.code, 0);
        QCOMPARE(greedy.out, beam.out);
        QVERIFY(nlohmann::json::parse(greedy.out).at("ids").size() <= 8);
    }

    void everyCommandHasHelp_data() {
        QTest::addColumn<QString>("command");
        for (const char* c : {"info", "tokenize", "generate", "logits", "bench"}) QTest::newRow(c) << c;
    }
    void everyCommandHasHelp() {
        QFETCH(QString, command);
        Run r = cli({command.toStdString(), "--help"});
        QCOMPARE(r.code, 0);
        QVERIFY(r.out.find("Usage: phatgoose " + command.toStdString()) == 0);
    }

    void errors_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("fragment");
        QTest::newRow("no command") << QStringList{} << 2 << "Usage";
        QTest::newRow("unknown command") << QStringList{"frobnicate"} << 2 << "unknown command 'frobnicate'";
        QTest::newRow("unknown option") << QStringList{"info", "--nope"} << 2 << "nope";
        QTest::newRow("missing folder") << QStringList{"info", "/no/such/model"} << 1 << "/no/such/model: not a folder";
        QTest::newRow("ids outside vocabulary") << QStringList{"logits", "--model", "TINY", "--input-ids", "5,99999,1"} << 1 << "outside the vocabulary";
        QTest::newRow("empty input ids") << QStringList{"logits", "--model", "TINY", "--input-ids", ""} << 1 << "empty input";
        QTest::newRow("ids not numbers") << QStringList{"logits", "--model", "TINY", "--input-ids", "5,x"} << 1 << "'x' is not an integer";
        QTest::newRow("no text") << QStringList{"generate", "--model", "TINY"} << 1 << "no input text";
        QTest::newRow("zero beams") << QStringList{"generate", "--model", "TINY", "--beams", "0", "hi"} << 1 << "--beams";
        QTest::newRow("model without tokenizer") << QStringList{"tokenize", "--model", "/no/such", "x"} << 1 << "spiece.model";
    }
    void errors() {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, fragment);
        std::vector<std::string> argv;
        for (const QString& a : args) argv.push_back(a == "TINY" ? tiny_ : a.toStdString());
        Run r = cli(argv);
        QCOMPARE(r.code, code);
        QVERIFY2(QString::fromStdString(r.err).contains(fragment), r.err.c_str());
        if (code == 1) QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
    }
};

QTEST_GUILESS_MAIN(CliTest)
#include "test_cli.moc"
