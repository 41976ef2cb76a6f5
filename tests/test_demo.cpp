// The demo workspace builder: the task suite's design rules, span corruption, and the whole pipeline in
// its --quick form — what it writes opens, is complete, is reproducible, and a stored metric equals an
// evaluation recomputed here from the written files.
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>

#include "demo/demo_builder.h"
#include "demo/span_corruption.h"
#include "demo/task_suite.h"
#include "error.h"
#include "eval/evaluator.h"
#include "experts/expert_library.h"
#include "fixtures/cli_run.h"
#include "fixtures/files.h"
#include "model/t5_loader.h"
#include "routing/expert_examples.h"
#include "store/results_store.h"
#include "store/workspace.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

// Puts the dropped spans back behind their sentinels: the inverse of corruptSpans.
std::string reassemble(const Example& ex) {
    std::map<std::string, std::string> spans;
    std::istringstream target(ex.target);
    std::string word, current;
    for (; target >> word;) {
        if (word.rfind("<extra_id_", 0) == 0)
            current = word;
        else
            spans[current] += (spans[current].empty() ? "" : " ") + word;
    }
    std::istringstream input(ex.input);
    std::string out;
    for (; input >> word;) out += (out.empty() ? "" : " ") + (spans.count(word) ? spans[word] : word);
    return out;
}

int64_t countRuns(const ResultsStore& store, const std::string& kind) {
    int64_t n = 0;
    for (const RunRecord& r : store.runs()) n += r.kind == kind && r.status == "finished";
    return n;
}

}  // namespace

class DemoTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root() const { return fs::path(tmp_.path().toStdString()); }

    // The --quick miniature; its rule keeps every held-out candidate unless `rule` says otherwise (the
    // miniature's experts learn nothing, so the real thresholds would keep none).
    DemoBuildOptions quick(const std::string& name, std::optional<HeldOutRule> rule = {}) const {
        DemoBuildOptions o;
        o.out = root() / name;
        o.scale = DemoScale::quick();
        o.scale.rule = rule.value_or(HeldOutRule{.max_base_above_chance = 100.0, .min_skill_score = 0.0});
        o.version = "test";
        return o;
    }

private Q_SLOTS:
    void suiteFollowsItsDesign() {
        const auto& suite = demoTaskSuite();
        std::set<std::string> held_in;
        int in_mc = 0, in_gen = 0, out_mc = 0, out_gen = 0;
        for (const TaskDefinition& t : suite) {
            const bool in = t.role == TaskRole::HeldIn;
            (in ? (t.multiple_choice ? in_mc : in_gen) : (t.multiple_choice ? out_mc : out_gen))++;
            if (in) held_in.insert(t.name);
        }
        QVERIFY(held_in.size() >= 6);
        QVERIFY(suite.size() - held_in.size() >= 4);
        QVERIFY(in_mc > 0 && in_gen > 0 && out_mc > 0 && out_gen > 0);
        for (const TaskDefinition& t : suite) {
            // Every held-out task needs a skill that a held-in task (an expert) teaches.
            QVERIFY2(held_in.count(t.skill), t.name.c_str());
            for (const Example& e : drawExamples(t, 50, 3)) {
                QCOMPARE(QString::fromStdString(e.task), QString::fromStdString(t.name));
                QVERIFY(!e.input.empty() && !e.target.empty());
                QCOMPARE(e.choices.empty(), !t.multiple_choice);
                if (t.multiple_choice) {
                    QVERIFY(e.choices.size() >= 2);
                    QVERIFY(std::count(e.choices.begin(), e.choices.end(), e.target) == 1);
                }
            }
        }
    }

    void drawsAreSeededAndAvoidGivenInputs() {
        const TaskDefinition& addition = demoTaskSuite()[1];
        const auto a = drawExamples(addition, 40, 11), b = drawExamples(addition, 40, 11);
        for (size_t i = 0; i < a.size(); ++i) QCOMPARE(a[i].input, b[i].input);
        std::set<std::string> train;
        for (const Example& e : a) train.insert(e.input);
        QCOMPARE(int(train.size()), 40);  // 100 distinct sums: no repeats needed
        for (const Example& e : drawExamples(addition, 40, 12, a)) QVERIFY(!train.count(e.input));
    }

    void spanCorruptionIsInvertible_data() {
        QTest::addColumn<QString>("text");
        QTest::newRow("review")
            << "Is the following review positive or negative? the soup was wonderful. positive";
        QTest::newRow("two words") << "hot cold";
        QTest::newRow("long")
            << "Repeat these words in reverse order: lamp river chair cloud window bread stone "
               "table apple book clock garden bottle road lamp river";
    }

    void spanCorruptionIsInvertible() {
        QFETCH(QString, text);
        std::mt19937_64 rng(5);
        for (int i = 0; i < 20; ++i) {
            const Example ex = corruptSpans(text.toStdString(), rng);
            QVERIFY(ex.target.rfind("<extra_id_0>", 0) == 0);               // something is always dropped
            QVERIFY(ex.input.find_first_not_of(' ') != std::string::npos);  // and something kept
            QCOMPARE(QString::fromStdString(reassemble(ex)), text);
        }
    }

    void quickBuildIsComplete() {
        std::vector<std::string> stages;
        const DemoBuildReport report = buildDemoWorkspace(quick("demo"), [&](const DemoProgress& p) {
            if (stages.empty() || stages.back() != p.stage) stages.push_back(p.stage);
        });
        QCOMPARE(int(report.stages.size()), 8);
        QCOMPARE(int(stages.size()), 8);
        QVERIFY(!fs::exists(root() / "demo.partial"));

        const Workspace ws = openWorkspace(root() / "demo");
        QCOMPARE(ws.tasks.size(), demoTaskSuite().size());
        QVERIFY(!ws.multitask_dir.empty());
        PretrainedT5 t5 = loadPretrainedT5(ws.model_dir);
        const ExpertLibrary library = ExpertLibrary::open(ws.experts_dir, t5.config);
        const size_t held_in = ws.testSets(TaskRole::HeldIn).size();
        QCOMPARE(library.experts().size(), held_in);
        for (const ExpertListing& e : library.listing()) {
            QVERIFY2(e.has_gate, e.name.c_str());
            QCOMPARE(e.task, e.name);
            QCOMPARE(e.training_steps, DemoScale::quick().expert_steps);
        }
        for (const WorkspaceTask& t : ws.tasks) QCOMPARE(t.train.empty(), t.role == TaskRole::HeldOut);

        ResultsStore store(ws.database);
        QCOMPARE(countRuns(store, "pretrain"), int64_t(1));
        QCOMPARE(countRuns(store, "train-expert"), int64_t(held_in + 1));  // + the multitask LoRA
        QCOMPARE(countRuns(store, "train-gate"), int64_t(held_in));
        QCOMPARE(countRuns(store, "eval"), int64_t(3));  // the held-out rule's, the methods', multitask's
        const std::vector<RunRecord> runs = store.runs();
        const int64_t routed = runs[runs.size() - 2].id, multitask = runs.back().id;
        const size_t methods = 6 + held_in;  // base, merge, retrieval, avg-act, arrow, phatgoose + singles
        QCOMPARE(store.metrics(routed).size(), methods * ws.tasks.size());
        QCOMPARE(store.metrics(multitask).size(), ws.tasks.size());
        for (const RunRecord& r : runs)
            if (r.kind != "eval")
                QCOMPARE(int64_t(store.lossCurve(r.id).size()), int64_t(store.lossCurve(r.id).back().step));

        // A stored cell equals the evaluation recomputed from the written files.
        const Dataset data = loadJsonl(ws.task("sum_question")->test);
        const ExpertExamples examples = loadExpertExamples(library.experts(), *t5.tokenizer);
        Evaluator evaluator(*t5.model, *t5.tokenizer, library.experts(), &examples);
        for (const char* method : {"phatgoose", "retrieval"}) {
            EvalSettings settings{.methods = parseEvalMethods(method, DemoScale::quick().top_k),
                                  .batch_size = 32,
                                  .max_new_tokens = 8};
            const EvalResult direct = evaluator.run({data}, settings);
            bool found = false;
            for (const MetricRecord& m : store.metrics(routed))
                if (m.method == method && m.dataset == "sum_question") {
                    QCOMPARE(m.value, direct.cells.front().score.value);
                    found = true;
                }
            QVERIFY(found);
        }
    }

    // The held-out rule on hand-made scores: kept only when the base model is within 10 points of chance and
    // the skill expert alone reaches 60.
    void ruleJudgesCandidates_data() {
        QTest::addColumn<double>("chance");
        QTest::addColumn<double>("base");
        QTest::addColumn<double>("skill");
        QTest::addColumn<bool>("kept");
        QTest::newRow("generation, learnable") << 0.0 << 4.0 << 75.0 << true;
        QTest::newRow("generation, base already does it") << 0.0 << 12.0 << 90.0 << false;
        QTest::newRow("choice of two at the line") << 50.0 << 60.0 << 60.0 << true;
        QTest::newRow("choice of three, base above") << 100.0 / 3 << 44.0 << 95.0 << false;
        QTest::newRow("skill expert cannot") << 0.0 << 0.0 << 59.0 << false;
    }
    void ruleJudgesCandidates() {
        QFETCH(double, chance);
        QFETCH(double, base);
        QFETCH(double, skill);
        QFETCH(bool, kept);
        const HeldOutVerdict v = judgeHeldOut(HeldOutRule{}, "t", "s", chance, base, skill);
        QCOMPARE(v.kept, kept);
        QCOMPARE(v.reason.empty(), kept);
    }

    // The rule's code path in a real build, whatever its thresholds keep: every candidate's verdict is the
    // rule applied to the scores stored in the rule's own evaluation run; the workspace keeps exactly the
    // kept candidates (the others' test data is gone) and the methods' run covers only them; a rule that
    // keeps nothing leaves the held-in tasks alone.
    void heldOutRuleDecidesTheTasks() {
        for (const auto& [name, rule] : {std::pair{"ruled", HeldOutRule{}},
                                         std::pair{"none-kept", HeldOutRule{.min_skill_score = 101.0}}}) {
            const DemoBuildReport report = buildDemoWorkspace(quick(name, rule));
            const Workspace ws = openWorkspace(root() / name);
            size_t candidates = 0;
            for (const TaskDefinition& t : demoTaskSuite()) candidates += t.role == TaskRole::HeldOut;
            QCOMPARE(report.held_out.size(), candidates);
            ResultsStore store(ws.database);
            std::vector<RunRecord> evals;
            for (const RunRecord& r : store.runs())
                if (r.kind == "eval") evals.push_back(r);
            QCOMPARE(evals.size(), size_t(3));
            const std::vector<MetricRecord> judged = store.metrics(evals[0].id);
            std::set<std::string> kept;
            for (const HeldOutVerdict& v : report.held_out) {
                double base = -1, skill = -1;
                for (const MetricRecord& m : judged) {
                    if (m.dataset != v.task) continue;
                    if (m.method == "base") base = m.value;
                    if (m.method == "single:" + v.skill) skill = m.value;
                }
                QCOMPARE(v.base, base);
                QCOMPARE(v.skill_score, skill);
                QCOMPARE(v.skill, findDemoTask(v.task).skill);
                QCOMPARE(v.kept,
                         base <= v.chance + rule.max_base_above_chance && skill >= rule.min_skill_score);
                if (v.kept) kept.insert(v.task);
                QCOMPARE(fs::exists(root() / name / "data" / "test" / (v.task + ".jsonl")), v.kept);
            }
            std::set<std::string> held_out;
            for (const WorkspaceTask& t : ws.tasks)
                if (t.role == TaskRole::HeldOut) held_out.insert(t.name);
            QCOMPARE(held_out, kept);
            std::set<std::string> routed;
            for (const MetricRecord& m : store.metrics(evals[1].id)) routed.insert(m.dataset);
            QCOMPARE(routed.size(), ws.tasks.size());
            for (const std::string& t : kept) QVERIFY(routed.count(t));
            const auto file = nlohmann::json::parse(
                phatgoose::testing::readFileBytes(root() / name / "held_out_rule.json"));
            QCOMPARE(file.at("candidates").size(), candidates);
            if (std::string(name) == "none-kept") QVERIFY(kept.empty());
        }
    }

    void sameSeedSameWorkspace() {
        buildDemoWorkspace(quick("again"));
        for (const char* file :
             {"model/model.safetensors", "model/spiece.model", "experts/addition/adapter_model.safetensors",
              "experts/addition/phatgoose_gate.safetensors", "data/test/sum_question.jsonl"})
            QVERIFY2(phatgoose::testing::readFileBytes(root() / "demo" / file) ==
                         phatgoose::testing::readFileBytes(root() / "again" / file),
                     file);
    }

    void existingFolderIsRefused() {
        fs::create_directories(root() / "taken");
        try {
            buildDemoWorkspace(quick("taken"));
            QFAIL("an existing folder was overwritten");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("already exists"), e.what());
        }
    }

    void cancelledBuildLeavesNothing() {
        std::atomic<bool> cancel{false};
        try {
            buildDemoWorkspace(
                quick("cancelled"), [&](const DemoProgress& p) { cancel = cancel || p.stage == "experts"; },
                &cancel);
            QFAIL("the build did not stop");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("cancelled"), e.what());
        }
        QVERIFY(!fs::exists(root() / "cancelled"));
        QVERIFY(!fs::exists(root() / "cancelled.partial"));
    }

    void cliBuildsAndRefusesBadUse() {
        const std::string out = (root() / "cli").string() + "/";  // a trailing slash names the same folder
        auto run = phatgoose::testing::runPhatgoose({"demo", "build", "--out", out, "--quick"});
        QVERIFY2(run.code == 0, run.err.c_str());
        QVERIFY(QString::fromStdString(run.out).contains("Demo workspace written to"));
        QVERIFY(fs::exists(fs::path(out) / "workspace.json"));
        run = phatgoose::testing::runPhatgoose({"demo", "build", "--quick"});
        QVERIFY(run.code != 0);
        QVERIFY2(QString::fromStdString(run.err).contains("--out"), run.err.c_str());
        run = phatgoose::testing::runPhatgoose({"demo", "destroy", "--out", out});
        QVERIFY(run.code != 0);
        QVERIFY2(QString::fromStdString(run.err).contains("usage"), run.err.c_str());
    }
};

QTEST_GUILESS_MAIN(DemoTest)
#include "test_demo.moc"
