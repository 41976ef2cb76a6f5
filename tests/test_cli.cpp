// The `phatgoose` subcommands through runCli, as a user or a script calls them: output formats, exit codes
// and one-line errors.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "experts/lora_expert.h"
#include "fixtures/cli_run.h"
#include "fixtures/files.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "reference_case.h"
#include "store/results_store.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

using Run = phatgoose::testing::CliRun;
const auto cli = phatgoose::testing::runPhatgoose;

std::string join(const std::vector<int64_t>& ids) {
    std::string s;
    for (int64_t id : ids) {
        if (!s.empty()) s += ',';
        s += std::to_string(id);
    }
    return s;
}

double maxAbsDiff(const nlohmann::json& rows, const std::vector<float>& flat) {
    double diff = 0;
    size_t i = 0;
    for (const auto& row : rows)
        for (const auto& v : row) diff = std::max(diff, std::abs(v.get<double>() - double(flat.at(i++))));
    return i == flat.size() ? diff : 1e30;
}

double maxAbsDiff(const nlohmann::json& rows, const nlohmann::json& other) {
    std::vector<float> flat;
    for (const auto& row : other)
        for (const auto& v : row) flat.push_back(v.get<float>());
    return maxAbsDiff(rows, flat);
}

}  // namespace

class CliTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string tiny_, library_, ungated_;

private Q_SLOTS:
    void initTestCase() {
        const fs::path root(tmp_.path().toStdString());
        tiny_ = phatgoose::testing::writeTinyT5(root / "tiny").string();
        const T5Config config = phatgoose::testing::tinyConfig({});
        library_ = (root / "library").string();
        ungated_ = (root / "ungated").string();
        for (int i = 0; i < 3; ++i) {
            const std::string name = "expert" + std::to_string(i);
            saveLoraExpert(phatgoose::testing::randomExpert(name, config, uint64_t(40 + i)),
                           fs::path(library_) / name);
            saveLoraExpert(phatgoose::testing::randomExpert(name, config, uint64_t(40 + i), 4, false),
                           fs::path(ungated_) / name);
        }
    }

    // With --adapter, `phatgoose logits` reproduces Hugging Face + PEFT.
    void logitsWithAdapterMatchReference_data() { logitsMatchReference_data(); }
    void logitsWithAdapterMatchReference() {
        QFETCH(QString, name);
        auto ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        Run r = cli({"logits", "--model", (ref.dir / "model").string(), "--adapter",
                     (ref.dir / "lora").string(), "--input-ids", join(ref.input_ids), "--decoder-ids",
                     join(ref.decoder_input_ids), "--greedy", std::to_string(ref.max_new_tokens)});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out);
        QVERIFY(maxAbsDiff(j.at("logits"), ref.lora.logits) < 1e-4);
        QVERIFY(maxAbsDiff(j.at("encoder_last_hidden_state"), ref.lora.encoder_last_hidden_state) < 1e-4);
        QCOMPARE(j.at("greedy_ids").get<std::vector<int64_t>>(), ref.lora.greedy_ids);
    }

    // route-stats: the documented JSON (same sites and expert order as route's trace), the full sums in the
    // database as a route-stats run, a readable summary, and usage errors.
    void routeStatsOverDatasets() {
        const fs::path root(tmp_.path().toStdString());
        using phatgoose::testing::writeFileBytes;
        writeFileBytes(root / "alpha.jsonl",
                       "{\"input\": \"count the letters\", \"target\": \"five\"}\n"
                       "{\"input\": \"reverse these words now\", \"target\": \"now words these\"}\n"
                       "{\"input\": \"add two and three\", \"target\": \"five\"}\n");
        writeFileBytes(root / "beta.jsonl",
                       "{\"input\": \"is it big\", \"target\": \"yes\"}\n"
                       "{\"input\": \"the first word\", \"target\": \"the\"}\n");
        const std::string db = (root / "stats.sqlite").string();
        Run r = cli({"route-stats", "--json", "--model", tiny_, "--experts", library_, "--data",
                     (root / "alpha.jsonl").string(), (root / "beta.jsonl").string(), "--top-k", "2",
                     "--batch", "2", "--db", db});
        QVERIFY2(r.code == 0, r.err.c_str());
        const auto j = nlohmann::json::parse(r.out);
        QCOMPARE(j.at("top_k").get<int>(), 2);
        QCOMPARE(j.at("expert_names").size(), size_t(3));
        QCOMPARE(j.at("datasets").size(), size_t(2));
        QCOMPARE(j.at("datasets")[0].at("name").get<std::string>(), std::string("alpha"));
        QCOMPARE(j.at("datasets")[0].at("examples").get<int>(), 3);
        QCOMPARE(j.at("datasets")[1].at("examples").get<int>(), 2);
        const auto trace = nlohmann::json::parse(cli({"route", "--json", "--model", tiny_, "--experts",
                                                      library_, "--max-new-tokens", "2", "count"})
                                                     .out)
                               .at("trace");
        QCOMPARE(j.at("expert_names"), trace.at("expert_names"));
        const auto& sites = j.at("datasets")[1].at("sites");
        QCOMPARE(sites.size(), trace.at("sites").size());
        for (size_t i = 0; i < sites.size(); ++i) {
            QCOMPARE(sites[i].at("site"), trace.at("sites")[i].at("site"));
            double total = 0;
            for (const auto& w : sites[i].at("mean_weight")) total += w.get<double>();
            QVERIFY(std::abs(total - 1.0) < 1e-5);
        }
        // The database holds the same statistics as one finished route-stats run.
        const ResultsStore store(db);
        const auto runs = store.runs();
        QCOMPARE(runs.size(), size_t(1));
        QCOMPARE(runs[0].kind, std::string("route-stats"));
        QCOMPARE(runs[0].status, std::string("finished"));
        const auto settings = nlohmann::json::parse(runs[0].settings);
        QCOMPARE(settings.at("method").get<std::string>(), std::string("phatgoose"));
        QCOMPARE(settings.at("expert_names"), j.at("expert_names"));
        const auto stored = store.routingStatistics(runs[0].id);
        QCOMPARE(stored.size(), size_t(2));
        const std::vector<double> mean = stored[1].sites[3].meanWeight();
        for (size_t e = 0; e < mean.size(); ++e)
            QVERIFY(std::abs(mean[e] - sites[3].at("mean_weight")[e].get<double>()) < 1e-12);
        // The summary names each dataset and its experts by weight.
        Run text = cli({"route-stats", "--model", tiny_, "--experts", library_, "--data",
                        (root / "alpha.jsonl").string(), "--top", "2"});
        QCOMPARE(text.code, 0);
        QVERIFY2(text.out.find("alpha (3 examples") != std::string::npos, text.out.c_str());
        QVERIFY(text.out.find("%  expert") != std::string::npos);
        // --exclude: the statistics of the library without that expert, and the run's settings say so.
        Run without = cli({"route-stats", "--json", "--model", tiny_, "--experts", library_, "--exclude",
                           "expert0", "--data", (root / "beta.jsonl").string(), "--db", db});
        QCOMPARE(without.code, 0);
        QCOMPARE(nlohmann::json::parse(without.out).at("expert_names").size(), size_t(2));
        QCOMPARE(nlohmann::json::parse(ResultsStore(db).runs().back().settings).at("exclude"),
                 nlohmann::json(std::vector<std::string>{"expert0"}));
        // Usage errors exit 2; a bad dataset names its file and line.
        QCOMPARE(cli({"route-stats", "--model", tiny_, "--experts", library_}).code, 2);
        QCOMPARE(cli({"route-stats", "--model", tiny_, "--data", (root / "beta.jsonl").string()}).code, 2);
        writeFileBytes(root / "broken.jsonl", "{\"input\": \"x\", \"target\": \"y\"}\nnot json\n");
        Run broken = cli({"route-stats", "--model", tiny_, "--experts", library_, "--data",
                          (root / "broken.jsonl").string()});
        QCOMPARE(broken.code, 1);
        QVERIFY2(broken.err.find("broken.jsonl:2") != std::string::npos, broken.err.c_str());
    }

    // --exclude routes exactly as a library folder without those experts would: same logits, same trace.
    void excludeEqualsALibraryWithoutTheExpert() {
        const fs::path root(tmp_.path().toStdString());
        const fs::path smaller = root / "library-without-expert1";
        if (!fs::exists(smaller)) {
            fs::create_directories(smaller);
            for (const char* name : {"expert0", "expert2"})
                fs::copy(fs::path(library_) / name, smaller / name, fs::copy_options::recursive);
        }
        for (const char* method : {"phatgoose", "arrow"}) {
            const std::vector<std::string> common{"logits",   "--model",       tiny_,   "--input-ids",
                                                  "13,7,5,1", "--decoder-ids", "0,9,4", "--method",
                                                  method,     "--top-k",       "1"};
            std::vector<std::string> excluded = common, folder = common;
            excluded.insert(excluded.end(), {"--experts", library_, "--exclude", "expert1"});
            folder.insert(folder.end(), {"--experts", smaller.string()});
            const Run a = cli(excluded), b = cli(folder), all = cli([&] {
                                                              auto v = common;
                                                              v.insert(v.end(), {"--experts", library_});
                                                              return v;
                                                          }());
            QVERIFY2(a.code == 0, a.err.c_str());
            QCOMPARE(a.out, b.out);
            QVERIFY(a.out != all.out);  // expert1 mattered, so leaving it out is visible
        }
        const Run traced = cli({"route", "--json", "--model", tiny_, "--experts", library_, "--exclude",
                                "expert1,expert2", "--top-k", "1", "--max-new-tokens", "2", "count"});
        QCOMPARE(nlohmann::json::parse(traced.out).at("trace").at("expert_names"),
                 nlohmann::json(std::vector<std::string>{"expert0"}));
        const Run unknown =
            cli({"route", "--model", tiny_, "--experts", library_, "--exclude", "nobody", "x"});
        QCOMPARE(unknown.code, 1);
        QVERIFY2(unknown.err.find("'nobody'") != std::string::npos &&
                     unknown.err.find("expert0, expert1, expert2") != std::string::npos,
                 unknown.err.c_str());
        QCOMPARE(cli({"route", "--model", tiny_, "--experts", library_, "--exclude", "expert0,,expert1", "x"})
                     .code,
                 2);
        QCOMPARE(cli({"route", "--model", tiny_, "--experts", library_, "--exclude",
                      "expert0,expert1,expert2", "x"})
                     .code,
                 1);
    }

    // --pin on every input and output token is `single` with that expert; a span pins only its tokens;
    // bad spans and pins without a token-wise method are refused.
    void pinEqualsSingleAndSpansAreChecked() {
        const std::vector<std::string> common{"logits",      "--model",   tiny_,
                                              "--input-ids", "13,7,5,1",  "--decoder-ids",
                                              "0,9,4",       "--experts", library_};
        auto with = [&](std::vector<std::string> extra) {
            std::vector<std::string> args = common;
            args.insert(args.end(), extra.begin(), extra.end());
            const Run r = cli(args);
            if (r.code != 0) throw std::runtime_error(r.err);  // fails the test, with the message
            return nlohmann::json::parse(r.out).at("logits");
        };
        const auto single = with({"--method", "single", "--expert", "expert1"});
        const auto pinned = with({"--top-k", "2", "--pin", "expert1", "--pin-output"});
        QVERIFY(maxAbsDiff(pinned, single) < 1e-5);
        const auto routed = with({"--top-k", "2"});
        const auto span = with({"--top-k", "2", "--pin", "expert1", "--pin-tokens", "1-2"});
        QVERIFY(maxAbsDiff(span, routed) > 1e-6 && maxAbsDiff(span, single) > 1e-6);
        const Run traced = cli({"route", "--json", "--model", tiny_, "--experts", library_, "--top-k", "2",
                                "--pin", "expert2", "--pin-tokens", "2-", "--max-new-tokens", "2", "count"});
        QVERIFY2(traced.code == 0, traced.err.c_str());
        const nlohmann::json trace = nlohmann::json::parse(traced.out).at("trace");
        const auto& site = trace.at("sites").at(0);
        const auto& experts = site.at("experts");
        QCOMPARE(site.at("tokens").get<size_t>(), size_t(4));  // "count": 3 pieces and eos
        for (size_t t = 2; t < 4; ++t) QCOMPARE(experts.at(2 * t).get<int>(), 2);
        for (const char* bad : {"3-1", "x", "1-2-3", "-4"}) {
            const Run r = cli({"route", "--model", tiny_, "--experts", library_, "--pin", "expert0",
                               "--pin-tokens", bad, "x"});
            QCOMPARE(r.code, 2);
            QVERIFY2(r.err.find("--pin-tokens") != std::string::npos, r.err.c_str());
        }
        const Run no_pin = cli({"route", "--model", tiny_, "--experts", library_, "--pin-output", "x"});
        QCOMPARE(no_pin.code, 2);
        const Run merge = cli(
            {"route", "--model", tiny_, "--experts", library_, "--method", "merge", "--pin", "expert0", "x"});
        QCOMPARE(merge.code, 1);
        QVERIFY2(merge.err.find("not to 'merge'") != std::string::npos, merge.err.c_str());
    }

    void routePrintsTrace() {
        Run r = cli({"route", "--json", "--model", tiny_, "--experts", library_, "--top-k", "2",
                     "--max-new-tokens", "4", "count the letters"});
        QCOMPARE(r.code, 0);
        auto j = nlohmann::json::parse(r.out);
        auto trace = j.at("trace");
        QCOMPARE(trace.at("method").get<std::string>(), std::string("phatgoose"));
        QCOMPARE(trace.at("expert_names").size(), size_t(3));
        const size_t enc = trace.at("encoder_pieces").size();
        for (const auto& site : trace.at("sites")) {
            const size_t rows =
                site.at("decoder_tokens").get<bool>() ? trace.at("decoder_pieces").size() : enc;
            QCOMPARE(site.at("tokens").get<size_t>(), rows);
            QCOMPARE(site.at("experts").size(), rows * 2);
        }
        Run table = cli(
            {"route", "--model", tiny_, "--experts", library_, "--max-new-tokens", "4", "count the letters"});
        QCOMPARE(table.code, 0);
        QVERIFY(table.out.find("Encoder tokens") != std::string::npos);
        // Each token's line names its most frequent top-1 expert first: recounted here from the JSON trace
        // (the same prompt and settings route the same way).
        Run top1 = cli({"route", "--json", "--model", tiny_, "--experts", library_, "--max-new-tokens", "4",
                        "count the letters"});
        auto t1 = nlohmann::json::parse(top1.out).at("trace");
        std::vector<int> count(3, 0);
        for (const auto& site : t1.at("sites"))
            if (!site.at("decoder_tokens").get<bool>()) ++count[site.at("experts")[0].get<size_t>()];
        const size_t best = size_t(std::max_element(count.begin(), count.end()) - count.begin());
        const std::string best_name = t1.at("expert_names")[best].get<std::string>();
        const size_t row0 = table.out.find("\n   0  ");
        QVERIFY(row0 != std::string::npos);
        const std::string line0 = table.out.substr(row0 + 1, table.out.find('\n', row0 + 1) - row0 - 1);
        const size_t first_name = line0.find("expert");
        QVERIFY2(line0.compare(first_name, best_name.size(), best_name) == 0, line0.c_str());
        // --all-columns: one column per expert.
        Run columns = cli({"route", "--all-columns", "--model", tiny_, "--experts", library_,
                           "--max-new-tokens", "4", "count the letters"});
        QCOMPARE(columns.code, 0);
        for (const auto& name : t1.at("expert_names"))
            QVERIFY(columns.out.find(name.get<std::string>()) != std::string::npos);
        // --timings: where the time went, on stderr, the output unchanged.
        Run timed = cli({"route", "--timings", "--model", tiny_, "--experts", library_, "--max-new-tokens",
                         "4", "count the letters"});
        QCOMPARE(timed.code, 0);
        QCOMPARE(timed.out, table.out);
        for (const char* phase : {"load", "router", "tokenize", "encode", "decode", "routing", "total"})
            QVERIFY2(timed.err.find(std::string("phatgoose timings: ") + phase) != std::string::npos,
                     timed.err.c_str());

        // --db keeps the same trace in the results database.
        QTemporaryDir dir;
        const std::string db = dir.filePath("route.sqlite").toStdString();
        Run saved = cli({"route", "--json", "--db", db, "--model", tiny_, "--experts", library_, "--top-k",
                         "2", "--max-new-tokens", "4", "count the letters"});
        QCOMPARE(saved.code, 0);
        const std::vector<TraceRecord> traces = ResultsStore(db).traces();
        QCOMPARE(int(traces.size()), 1);
        QVERIFY(!traces[0].run);
        QCOMPARE(nlohmann::json::parse(traces[0].json), nlohmann::json::parse(saved.out).at("trace"));
        QCOMPARE(nlohmann::json::parse(saved.out).at("trace"), trace);
    }

    void generateUnderEveryDataFreeMethod_data() {
        QTest::addColumn<QString>("method");
        for (const char* m : {"base", "merge", "arrow", "phatgoose"}) QTest::newRow(m) << m;
    }
    void generateUnderEveryDataFreeMethod() {
        QFETCH(QString, method);
        Run r = cli({"generate", "--model", tiny_, "--experts", library_, "--method", method.toStdString(),
                     "--max-new-tokens", "4", "sort these numbers"});
        QCOMPARE(r.code, 0);
    }

    // `phatgoose logits` is the form outside parity checks use: it must reproduce the reference outputs.
    void logitsMatchReference_data() {
        QTest::addColumn<QString>("name");
        for (const auto& n : phatgoose::testing::referenceCaseNames())
            QTest::newRow(n.c_str()) << QString::fromStdString(n);
    }
    void logitsMatchReference() {
        QFETCH(QString, name);
        auto ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        Run r = cli({"logits", "--model", (ref.dir / "model").string(), "--input-ids", join(ref.input_ids),
                     "--decoder-ids", join(ref.decoder_input_ids), "--greedy",
                     std::to_string(ref.max_new_tokens)});
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
        Run greedy =
            cli({"generate", "--json", "--model", tiny_, "--max-new-tokens", "8", "count the letters"});
        Run beam = cli({"generate", "--json", "--model", tiny_, "--max-new-tokens", "8", "--beams", "1",
                        "count the letters"});
        QCOMPARE(greedy.code, 0);
        QCOMPARE(greedy.out, beam.out);
        QVERIFY(nlohmann::json::parse(greedy.out).at("ids").size() <= 8);
    }

    // --timings on generate and logits: one decode line whose token count is the number generated.
    void timingsCountTheTokens() {
        Run timed = cli({"generate", "--json", "--timings", "--model", tiny_, "--max-new-tokens", "6",
                         "count the letters"});
        QCOMPARE(timed.code, 0);
        const size_t generated = nlohmann::json::parse(timed.out).at("ids").size();
        const std::string decode_line = "phatgoose timings: decode";
        const size_t at = timed.err.find(decode_line);
        QVERIFY2(at != std::string::npos, timed.err.c_str());
        std::string count_text = "(";
        count_text.append(std::to_string(generated)).append(" tokens");
        QVERIFY2(timed.err.find(count_text, at) != std::string::npos, timed.err.c_str());
        Run logits =
            cli({"logits", "--timings", "--model", tiny_, "--input-ids", "13,7,5,1", "--greedy", "3"});
        QCOMPARE(logits.code, 0);
        for (const char* phase : {"load", "encode", "decode", "greedy decode", "output", "total"})
            QVERIFY2(logits.err.find(std::string("phatgoose timings: ") + phase) != std::string::npos,
                     logits.err.c_str());
        QVERIFY(logits.err.find("(4 tokens") != std::string::npos);  // the encode line of the 4 input ids
        // The input is encoded once: greedy decoding reuses the encoder output of the logits pass.
        QVERIFY2(logits.err.find("greedy encode") == std::string::npos, logits.err.c_str());
        QCOMPARE(logits.err.find("(4 tokens"), logits.err.rfind("(4 tokens"));
    }

    void benchRefusesAnUnknownScale() {
        const Run r = cli({"bench", "--scale", "tiny"});
        QCOMPARE(r.code, 2);
        QVERIFY2(
            r.err.find("--scale must be paper, large, base or flan-small (got 'tiny')") != std::string::npos,
            r.err.c_str());
    }

    void everyCommandHasHelp_data() {
        QTest::addColumn<QString>("command");
        for (const char* c : {"info", "tokenize", "generate", "logits", "route", "route-stats",
                              "train-expert", "train-gate", "bench"})
            QTest::newRow(c) << c;
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
        QTest::newRow("missing folder")
            << QStringList{"info", "/no/such/model"} << 1 << "/no/such/model: not a folder";
        QTest::newRow("ids outside vocabulary")
            << QStringList{"logits", "--model", "TINY", "--input-ids", "5,99999,1"} << 1
            << "outside the vocabulary";
        QTest::newRow("empty input ids")
            << QStringList{"logits", "--model", "TINY", "--input-ids", ""} << 1 << "empty input";
        QTest::newRow("ids not numbers")
            << QStringList{"logits", "--model", "TINY", "--input-ids", "5,x"} << 2 << "'x' is not an integer";
        QTest::newRow("no text") << QStringList{"generate", "--model", "TINY"} << 1 << "no input text";
        QTest::newRow("zero beams") << QStringList{"generate", "--model", "TINY", "--beams", "0", "hi"} << 2
                                    << "--beams";
        QTest::newRow("top-k above the number of experts")
            << QStringList{"route", "--model", "TINY", "--experts", "LIBRARY", "--top-k", "4", "hi"} << 1
            << "top-k must be between 1 and the number of experts (3)";
        QTest::newRow("phatgoose without gates")
            << QStringList{"route", "--model", "TINY", "--experts", "UNGATED", "hi"} << 1
            << "none of the 3 experts has one";
        QTest::newRow("unknown method") << QStringList{"generate", "--model",  "TINY",     "--experts",
                                                       "LIBRARY",  "--method", "teleport", "hi"}
                                        << 1 << "unknown routing method 'teleport'";
        QTest::newRow("method without experts")
            << QStringList{"generate", "--model", "TINY", "--method", "merge", "hi"} << 2
            << "needs --experts";
        QTest::newRow("retrieval without data")
            << QStringList{"generate", "--model",  "TINY",      "--experts",
                           "LIBRARY",  "--method", "retrieval", "hi"}
            << 1 << "records no training dataset";
        QTest::newRow("library is not a library")
            << QStringList{"route", "--model", "TINY", "--experts", "TINY", "hi"} << 1 << "no expert folders";
        QTest::newRow("model without tokenizer")
            << QStringList{"tokenize", "--model", "/no/such", "x"} << 1 << "spiece.model";
    }
    void errors() {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, fragment);
        std::vector<std::string> argv;
        for (const QString& a : args)
            argv.push_back(a == "TINY"      ? tiny_
                           : a == "LIBRARY" ? library_
                           : a == "UNGATED" ? ungated_
                                            : a.toStdString());
        Run r = cli(argv);
        QCOMPARE(r.code, code);
        QVERIFY2(QString::fromStdString(r.err).contains(fragment), r.err.c_str());
        if (code == 1 || !args.isEmpty()) QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
    }
};

QTEST_GUILESS_MAIN(CliTest)
#include "test_cli.moc"
