// The evaluator against hand computation on a tiny random model, its determinism and cancellation, the
// dataset and method errors it reports, and `phatgoose eval` / `phatgoose results` through runCli.
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "error.h"
#include "eval/evaluator.h"
#include "experts/lora_expert.h"
#include "fixtures/cli_run.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "model/generation.h"
#include "model/scoring.h"
#include "model/t5_loader.h"
#include "store/results_store.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

using Run = phatgoose::testing::CliRun;
const auto cli = phatgoose::testing::runPhatgoose;

const std::vector<std::string> kInputs{"the cat sat on the mat", "a dog runs",    "is the sky blue",
                                       "two plus two",           "hello world",   "where is the river",
                                       "who wrote this book",    "red green blue"};

Dataset makeDataset(const std::string& name, std::vector<Example> examples) {
    Dataset d;
    d.path = name + ".jsonl";
    d.name = name;
    for (size_t i = 0; i < examples.size(); ++i) examples[i].line = int64_t(i + 1);
    d.examples = std::move(examples);
    return d;
}

Dataset rankDataset() {
    std::vector<Example> examples;
    const std::vector<std::string> choices{"yes", "no", "maybe"};
    for (size_t i = 0; i < kInputs.size(); ++i)
        examples.push_back({kInputs[i], choices[i % 3], choices, "rank", 0});
    return makeDataset("rank", examples);
}

void writeFile(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string jsonl(const std::vector<Example>& examples) {
    std::string text;
    for (const Example& ex : examples) {
        nlohmann::json j{{"input", ex.input}, {"target", ex.target}};
        if (!ex.choices.empty()) j["choices"] = ex.choices;
        text += j.dump() + "\n";
    }
    return text;
}

}  // namespace

class EvaluatorTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root_, model_dir_, library_, expert_data_;
    PretrainedT5 t5_;
    std::vector<LoraExpert> experts_;
    ExpertExamples examples_;

    Evaluator evaluator() { return Evaluator(*t5_.model, *t5_.tokenizer, experts_, &examples_); }

    std::string greedy(const std::string& text, int64_t max_new_tokens) {
        GenerationOptions options;
        options.max_new_tokens = max_new_tokens;
        return t5_.tokenizer->decode(generate(*t5_.model, {t5_.tokenizer->encode(text)}, options).at(0).ids);
    }

    Dataset generationDataset(bool own_output) {
        std::vector<Example> examples;
        for (const std::string& input : kInputs) {
            const std::string out = greedy(input, 6);
            examples.push_back({input, own_output ? out : out + " never said", {}, "gen", 0});
        }
        return makeDataset(own_output ? "own" : "other", examples);
    }

    void writeLibrary() {
        library_ = root_ / "library";
        expert_data_ = root_ / "expert-data";
        fs::create_directories(expert_data_);
        for (const LoraExpert& e : experts_) {
            saveLoraExpert(e, library_ / e.name);
            writeFile(expert_data_ / (e.name + ".jsonl"), jsonl({{kInputs[0], "yes"}, {kInputs[1], "no"}}));
        }
    }

private Q_SLOTS:
    void initTestCase() {
        root_ = tmp_.path().toStdString();
        model_dir_ = phatgoose::testing::writeTinyT5(root_ / "tiny");
        t5_ = loadPretrainedT5(model_dir_);
        experts_ = phatgoose::testing::randomExperts(3, t5_.config);
        for (size_t e = 0; e < experts_.size(); ++e) {
            examples_.inputs.push_back(
                {t5_.tokenizer->encode(kInputs[e]), t5_.tokenizer->encode(kInputs[e + 3])});
            examples_.targets.push_back({t5_.tokenizer->encode("yes"), t5_.tokenizer->encode("no")});
        }
        writeLibrary();
    }

    // Accuracy is the share of examples whose target has the highest mean log-likelihood among the choices.
    void rankAccuracyIsArgmaxOfScoreTargets_data() {
        QTest::addColumn<QString>("method");
        QTest::newRow("base") << "base";
        QTest::newRow("merge") << "merge";
        QTest::newRow("phatgoose") << "phatgoose";
        QTest::newRow("retrieval") << "retrieval";
    }
    void rankAccuracyIsArgmaxOfScoreTargets() {
        QFETCH(QString, method);
        const Dataset data = rankDataset();
        EvalSettings settings;
        settings.methods = parseEvalMethods(method.toStdString(), 2);
        settings.batch_size = 3;
        const EvalResult result = evaluator().run({data}, settings);
        QCOMPARE(result.cells.size(), size_t(1));
        const DatasetScore& score = result.cells[0].score;
        QCOMPARE(score.metric, std::string("accuracy"));

        auto router = makeRouter(*t5_.model, experts_, settings.methods[0].spec, &examples_);
        int correct = 0;
        for (size_t i = 0; i < data.examples.size(); ++i) {
            const Example& ex = data.examples[i];
            std::vector<std::vector<int64_t>> inputs, targets;
            for (const std::string& c : ex.choices) {
                inputs.push_back(t5_.tokenizer->encode(ex.input));
                targets.push_back(t5_.tokenizer->encode(c));
            }
            router->beginBatch(inputs);
            const auto scores = scoreTargets(*t5_.model, inputs, targets);
            size_t best = 0;
            for (size_t c = 1; c < scores.size(); ++c)
                if (scores[c].mean > scores[best].mean) best = c;
            QCOMPARE(score.predictions[i].prediction, ex.choices[best]);
            QVERIFY(std::abs(score.predictions[i].score - scores[best].mean) < 1e-4);
            correct += ex.choices[best] == ex.target;
        }
        QCOMPARE(score.examples, int64_t(data.examples.size()));
        QVERIFY(std::abs(score.value - 100.0 * correct / double(data.examples.size())) < 1e-9);
    }

    // Targets set to the model's own greedy output match exactly; targets with words appended never do.
    void exactMatchOnOwnGreedyOutput() {
        EvalSettings settings;
        settings.methods = parseEvalMethods("base", 2);
        settings.batch_size = 3;
        settings.max_new_tokens = 6;
        const EvalResult result =
            evaluator().run({generationDataset(true), generationDataset(false)}, settings);
        QCOMPARE(result.cells.size(), size_t(2));
        QCOMPARE(result.cells[0].score.metric, std::string("exact_match"));
        QCOMPARE(result.cells[0].score.value, 100.0);
        QCOMPARE(result.cells[1].score.value, 0.0);
        QCOMPARE(result.average("base"), 50.0);
    }

    void sameInputsGiveSameNumbers() {
        Dataset mixed = rankDataset();
        for (const Example& ex : generationDataset(true).examples) mixed.examples.push_back(ex);
        EvalSettings settings;
        settings.methods =
            parseEvalMethods("base,merge,arrow,phatgoose,single:expert1,retrieval,average-activation", 2);
        settings.batch_size = 5;
        settings.max_new_tokens = 4;
        std::vector<EvalProgress> seen;
        EvalHooks hooks;
        hooks.progress = [&](const EvalProgress& p) { seen.push_back(p); };
        const EvalResult a = evaluator().run({mixed}, settings, hooks);
        const EvalResult b = evaluator().run({mixed}, settings);
        QCOMPARE(a.cells.size(), settings.methods.size());
        QCOMPARE(a.cells[0].score.metric, std::string("accuracy+exact_match"));
        QCOMPARE(seen.back().done, seen.back().total);
        QCOMPARE(seen.back().total, int64_t(settings.methods.size() * mixed.examples.size()));
        for (size_t c = 0; c < a.cells.size(); ++c) {
            QCOMPARE(a.cells[c].score.value, b.cells[c].score.value);
            for (size_t i = 0; i < a.cells[c].score.predictions.size(); ++i) {
                QCOMPARE(a.cells[c].score.predictions[i].prediction,
                         b.cells[c].score.predictions[i].prediction);
                QCOMPARE(a.cells[c].score.predictions[i].score, b.cells[c].score.predictions[i].score);
            }
        }
    }

    // Cancelled during the second method: the first method's cell is committed, the run marked cancelled.
    void cancellationStopsBetweenBatches() {
        ResultsStore store(root_ / "cancel.sqlite");
        std::atomic<bool> cancel{false};
        EvalHooks hooks;
        hooks.cancel = &cancel;
        hooks.progress = [&](const EvalProgress& p) {
            if (p.method == "merge") cancel = true;
        };
        EvalSettings settings;
        settings.methods = parseEvalMethods("base,merge,phatgoose", 2);
        settings.batch_size = 2;
        const std::vector<Dataset> data{rankDataset()};
        Evaluator ev = evaluator();
        const StoredEvaluation stored = evaluateIntoStore(ev, store, data, settings, hooks, "{}", "test");
        QVERIFY(stored.result.cancelled);
        QCOMPARE(stored.result.cells.size(), size_t(1));
        QCOMPARE(store.run(stored.run)->status, std::string("cancelled"));
        const auto metrics = store.metrics(stored.run);
        QCOMPARE(metrics.size(), size_t(1));
        QCOMPARE(metrics[0].method, std::string("base"));
        QCOMPARE(metrics[0].value, stored.result.cells[0].score.value);
        QCOMPARE(store.predictions(stored.run).size(), data[0].examples.size());
    }

    // A grid refused up front records no run at all.
    void refusedGridLeavesNoRun() {
        ResultsStore store(root_ / "refused.sqlite");
        EvalSettings settings;
        settings.methods = parseEvalMethods("base,single:nobody", 2);
        Evaluator ev = evaluator();
        QVERIFY_THROWS_EXCEPTION(Error,
                                 evaluateIntoStore(ev, store, {rankDataset()}, settings, {}, "{}", "test"));
        QCOMPARE(store.runs().size(), size_t(0));
    }

    void badMethodsAreRefused_data() {
        QTest::addColumn<QString>("methods");
        QTest::addColumn<QString>("expected");
        QTest::newRow("empty") << ""
                               << "no routing method";
        QTest::newRow("unknown") << "phatgoose,nonsense"
                                 << "unknown routing method 'nonsense'";
        QTest::newRow("single without name") << "single"
                                             << "needs an expert name";
        QTest::newRow("name on another method") << "merge:expert0"
                                                << "only 'single'";
        QTest::newRow("repeated") << "merge,merge"
                                  << "listed twice";
        QTest::newRow("unknown expert") << "single:nobody"
                                        << "no expert named 'nobody'";
    }
    void badMethodsAreRefused() {
        QFETCH(QString, methods);
        QFETCH(QString, expected);
        try {
            EvalSettings settings;
            settings.methods = parseEvalMethods(methods.toStdString(), 2);
            evaluator().run({rankDataset()}, settings);
            QFAIL("the methods should have been refused");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(expected), e.what());
        }
    }

    void badDatasetsAreRefused_data() {
        QTest::addColumn<QString>("content");
        QTest::addColumn<QString>("expected");
        QTest::newRow("malformed JSON")
            << "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\", \"target\": \n"
            << "bad.jsonl:2: malformed JSON";
        QTest::newRow("missing input") << "{\"target\": \"b\"}\n"
                                       << "bad.jsonl:1: missing \"input\"";
        QTest::newRow("missing target") << "{\"input\": \"a\"}\n"
                                        << "bad.jsonl:1: missing \"target\"";
        QTest::newRow("empty") << "\n\n"
                               << "holds no examples";
        QTest::newRow("one choice") << "{\"input\": \"a\", \"target\": \"b\", \"choices\": [\"b\"]}\n"
                                    << "bad.jsonl:1: \"choices\" must hold at least two";
    }
    void badDatasetsAreRefused() {
        QFETCH(QString, content);
        QFETCH(QString, expected);
        const fs::path file = root_ / "bad.jsonl";
        writeFile(file, content.toStdString());
        Run r = cli({"eval", "--model", model_dir_.string(), "--data", file.string(), "--methods", "base",
                     "--db", (root_ / "bad-data.sqlite").string()});
        QCOMPARE(r.code, 1);
        QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
        QVERIFY2(QString::fromStdString(r.err).contains(expected), r.err.c_str());
    }

    void skipBadCountsMalformedLines() {
        const fs::path file = root_ / "partly.jsonl";
        writeFile(file, jsonl({{kInputs[0], "yes", {"yes", "no"}}}) + "{not json\n" +
                            jsonl({{kInputs[1], "no", {"yes", "no"}}}));
        const Dataset d = loadJsonl(file, true);
        QCOMPARE(d.skipped_lines, int64_t(1));
        QCOMPARE(d.examples.size(), size_t(2));
        Run r = cli({"eval", "--model", model_dir_.string(), "--data", file.string(), "--methods", "base",
                     "--skip-bad", "--db", (root_ / "skip.sqlite").string()});
        QCOMPARE(r.code, 0);
        QVERIFY2(r.err.find("skipped 1 malformed line") != std::string::npos, r.err.c_str());
    }

    void cliEvalAndResults() {
        const fs::path a = root_ / "choose.jsonl", b = root_ / "say.jsonl", db = root_ / "cli.sqlite";
        writeFile(a, jsonl(rankDataset().examples));
        writeFile(b, jsonl(generationDataset(true).examples));
        Run r = cli({"eval",
                     "--model",
                     model_dir_.string(),
                     "--experts",
                     library_.string(),
                     "--data",
                     a.string(),
                     b.string(),
                     "--methods",
                     "base,phatgoose,retrieval,single:expert0",
                     "--top-k",
                     "2",
                     "--expert-data",
                     expert_data_.string(),
                     "--batch",
                     "4",
                     "--max-new-tokens",
                     "6",
                     "--db",
                     db.string()});
        QVERIFY2(r.code == 0, r.err.c_str());
        for (const char* text :
             {"method", "choose", "say", "average", "phatgoose (k=2)", "single:expert0", "Run 1"})
            QVERIFY2(r.out.find(text) != std::string::npos, text);
        QVERIFY(r.err.find("[64/64]") != std::string::npos);

        Run table = cli({"results", "--db", db.string()});
        QCOMPARE(table.code, 0);
        QVERIFY(table.out.find("finished") != std::string::npos);
        QVERIFY(table.out.find("retrieval") != std::string::npos);

        Run csv = cli({"results", "--db", db.string(), "--format", "csv", "--run", "1"});
        QCOMPARE(csv.code, 0);
        QCOMPARE(std::count(csv.out.begin(), csv.out.end(), '\n'), 1L + 4 * 2);
        QVERIFY(csv.out.rfind("run,method,top_k,dataset,metric,value,examples\n", 0) == 0);

        Run js = cli({"results", "--db", db.string(), "--format", "json"});
        QCOMPARE(js.code, 0);
        const auto j = nlohmann::json::parse(js.out);
        QCOMPARE(j.at("metrics").size(), size_t(8));
        QCOMPARE(j.at("run").at("status").get<std::string>(), std::string("finished"));
        QCOMPARE(j.at("run").at("settings").at("batch_size").get<int>(), 4);
        // Base generates its own greedy outputs on `say`: exact match 100 %.
        for (const auto& m : j.at("metrics"))
            if (m.at("method") == "base" && m.at("dataset") == "say")
                QCOMPARE(m.at("value").get<double>(), 100.0);
    }

    void cliErrorsAreOneLine_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expected");
        QTest::addColumn<int>("code");  // 2: the command line itself is wrong; 1: anything else
        const QString data = QString::fromStdString((root_ / "choose.jsonl").string());
        const QString model = QString::fromStdString(model_dir_.string());
        const QString db = QString::fromStdString((root_ / "errors.sqlite").string());
        QTest::newRow("bad method") << QStringList{"eval",      "--model", model,  "--data", data,
                                                   "--methods", "bogus",   "--db", db}
                                    << "unknown routing method 'bogus'" << 1;
        QTest::newRow("db in a missing folder")
            << QStringList{"eval",
                           "--model",
                           model,
                           "--data",
                           data,
                           "--methods",
                           "base",
                           "--db",
                           QString::fromStdString((root_ / "nowhere" / "w.sqlite").string())}
            << "cannot open" << 1;
        QTest::newRow("db is a folder")
            << QStringList{"eval",   "--model", model,
                           "--data", data,      "--methods",
                           "base",   "--db",    QString::fromStdString(root_.string())}
            << "is a folder" << 1;
        QTest::newRow("no db") << QStringList{"eval", "--model", model, "--data", data, "--methods", "base"}
                               << "--db FILE is required" << 2;
        QTest::newRow("results of a missing db")
            << QStringList{"results", "--db", QString::fromStdString((root_ / "absent.sqlite").string())}
            << "no such results database" << 1;
        QTest::newRow("unknown format")
            << QStringList{"results", "--db", db, "--format", "xml"} << "--format" << 2;
        QTest::newRow("unknown run") << QStringList{"results", "--db",
                                                    QString::fromStdString((root_ / "cli.sqlite").string()),
                                                    "--run", "99"}
                                     << "no run with id 99" << 1;
    }
    void cliErrorsAreOneLine() {
        QFETCH(QStringList, args);
        QFETCH(QString, expected);
        QFETCH(int, code);
        std::vector<std::string> argv;
        for (const QString& a : args) argv.push_back(a.toStdString());
        Run r = cli(argv);
        QCOMPARE(r.code, code);
        QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
        QVERIFY2(QString::fromStdString(r.err).contains(expected), r.err.c_str());
    }
};

QTEST_GUILESS_MAIN(EvaluatorTest)
#include "test_evaluator.moc"
