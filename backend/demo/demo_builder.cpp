#include "demo/demo_builder.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "atomic_file.h"
#include "demo/span_corruption.h"
#include "demo/task_suite.h"
#include "error.h"
#include "eval/evaluator.h"
#include "experts/expert_library.h"
#include "model/t5_init.h"
#include "model/t5_loader.h"
#include "routing/expert_examples.h"
#include "store/results_store.h"
#include "store/workspace.h"
#include "training/base_model_trainer.h"
#include "training/expert_trainer.h"
#include "training/gate_trainer.h"

namespace phatgoose {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
using Progress = std::function<void(const DemoProgress&)>;

T5Config tinyT5(int64_t d_model, int64_t d_ff, int64_t heads, int64_t layers) {
    T5Config c;
    c.d_model = d_model;
    c.d_kv = d_model / heads;
    c.d_ff = d_ff;
    c.num_heads = heads;
    c.num_layers = layers;
    c.num_decoder_layers = layers;
    c.relative_attention_num_buckets = 16;
    c.relative_attention_max_distance = 32;
    c.activation = FeedForwardActivation::GeluTanh;  // T5 v1.1: gated-gelu, untied head
    c.feed_forward_proj = "gated-gelu";
    c.gated = true;
    c.tie_word_embeddings = false;
    c.dropout_rate = 0.0;  // the shipped demo was trained without dropout
    return c;
}

// Everything one build shares: where it writes, what it reports, when it stops.
struct Build {
    const DemoBuildOptions& options;
    const Progress& progress;
    const std::atomic<bool>* cancel;
    Workspace ws;
    DemoBuildReport report;

    const DemoScale& scale() const { return options.scale; }
    void say(const DemoProgress& p) const {
        if (progress) progress(p);
    }
    void checkCancel(const std::string& stage) const {
        if (cancel && cancel->load()) throw Error("demo build cancelled during " + stage);
    }
    TrainingControl control(const std::string& stage, const std::string& item) const {
        TrainingControl c;
        c.cancel = cancel;
        c.progress = [this, stage, item](const TrainingProgress& p) {
            say({.stage = stage, .item = item, .done = p.step, .total = p.total_steps, .loss = p.loss});
        };
        return c;
    }
    template <class F>
    void stage(const std::string& name, F&& work) {
        checkCancel(name);
        const auto start = Clock::now();
        say({.stage = name});
        work();
        report.stages.push_back({name, std::chrono::duration<double>(Clock::now() - start).count()});
    }
};

// ---- data ----

void writeTaskData(Build& b) {
    const auto& suite = demoTaskSuite();
    const DemoScale& s = b.scale();
    for (size_t i = 0; i < suite.size(); ++i) {
        const TaskDefinition& def = suite[i];
        const uint64_t seed = b.options.seed * 1000 + i * 10;
        WorkspaceTask t{.name = def.name, .role = def.role, .multiple_choice = def.multiple_choice};
        t.description =
            def.description + (def.role == TaskRole::HeldOut ? " (needs the " + def.skill + " skill)" : "");
        std::vector<Example> train, valid;
        if (def.role == TaskRole::HeldIn) {
            train = drawExamples(def, s.train_per_task, seed + 1);
            valid = drawExamples(def, s.valid_per_task, seed + 2, train);
            t.train = b.ws.root / "data" / "train" / (def.name + ".jsonl");
            t.valid = b.ws.root / "data" / "valid" / (def.name + ".jsonl");
            writeJsonl(t.train, train);
            writeJsonl(t.valid, valid);
        }
        std::vector<Example> seen = train;
        seen.insert(seen.end(), valid.begin(), valid.end());
        const std::vector<Example> test = drawExamples(def, s.test_per_task, seed + 3, seen);
        t.test = b.ws.root / "data" / "test" / (def.name + ".jsonl");
        writeJsonl(t.test, test);
        t.example_prompt = test.front().input;
        b.ws.tasks.push_back(t);
        b.say({.stage = "data", .item = def.name, .done = int64_t(i) + 1, .total = int64_t(suite.size())});
    }
}

// ---- tokenizer and base model ----

// Every text of every split: the tokenizer only segments, it learns no task.
void trainTokenizer(Build& b) {
    const fs::path corpus = b.ws.root / ".build" / "corpus.txt";
    fs::create_directories(corpus.parent_path());
    {
        std::ofstream out(corpus);
        for (const WorkspaceTask& t : b.ws.tasks)
            for (const fs::path& split : {t.train, t.valid, t.test}) {
                if (split.empty()) continue;
                for (const Example& e : loadJsonl(split).examples) {
                    out << e.input << "\n" << e.target << "\n";
                    for (const std::string& c : e.choices) out << c << "\n";
                }
            }
        if (!out) throw Error(corpus.string() + ": cannot write the tokenizer corpus");
    }
    fs::create_directories(b.ws.model_dir);
    Tokenizer::train({.input_text = corpus,
                      .model_prefix = b.ws.root / ".build" / "spiece",
                      .vocab_size = b.scale().vocab_pieces,
                      // BPE merges until every frequent word is one piece (unigram, tried first, kept
                      // splitting "review" into "rev iew"): the probe's tokens are words.
                      .model_type = "bpe",
                      .hard_vocab_limit = false});
    fs::copy_file(b.ws.root / ".build" / "spiece.model", b.ws.model_dir / "spiece.model");
    writeFileAtomically(
        b.ws.model_dir / "tokenizer_config.json",
        json{{"tokenizer_class", "T5Tokenizer"}, {"extra_ids", b.scale().extra_ids}}.dump(2) + "\n");
}

// Span corruption over the held-in tasks' training text (inputs and answers), a few corruptions each.
Dataset pretrainingCorpus(const Build& b) {
    Dataset corpus;
    corpus.path = b.ws.root / ".build" / "pretraining";
    corpus.name = "span-corruption";
    std::mt19937_64 rng(b.options.seed);
    for (const WorkspaceTask& t : b.ws.tasks) {
        if (t.role != TaskRole::HeldIn) continue;
        for (const Example& e : loadJsonl(t.train).examples)
            for (int copy = 0; copy < 2; ++copy) {
                Example c =
                    corruptSpans(e.input + " " + e.target, rng, {.max_sentinels = b.scale().extra_ids});
                c.task = "pretraining";
                c.line = int64_t(corpus.examples.size()) + 1;
                corpus.examples.push_back(std::move(c));
            }
    }
    return corpus;
}

void recordTraining(const Build& b, const std::string& kind, const std::string& who, const json& settings,
                    const std::vector<double>& curve) {
    ResultsStore store(b.ws.database);
    const std::string curve_kind = kind == kTrainGateRun ? "gate" : kind == "pretrain" ? "base" : "expert";
    recordTrainingRun(store, kind, who, curve_kind, settings.dump(), curve, b.options.version);
}

PretrainedT5 pretrain(Build& b) {
    const DemoScale& s = b.scale();
    Tokenizer tokenizer = Tokenizer::fromModelDir(b.ws.model_dir);
    T5Config config = s.model;
    config.vocab_size = tokenizer.size();
    T5Model model(config);
    initT5Weights(*model, b.options.seed);
    TrainingOptions o{.steps = s.pretrain_steps,
                      .learning_rate = s.pretrain_lr,
                      .schedule = LearningRateSchedule::LinearDecay,
                      .batch_size = s.pretrain_batch,
                      .seed = b.options.seed};
    const LoopOutcome outcome =
        BaseModelTrainer(*model, tokenizer, o).train(pretrainingCorpus(b), b.control("pre-training", ""));
    saveT5(b.ws.model_dir, *model);
    recordTraining(b, "pretrain", "base model",
                   {{"objective", "span corruption"},
                    {"steps", o.steps},
                    {"learning_rate", o.learning_rate},
                    {"batch_size", o.batch_size},
                    {"seed", o.seed}},
                   outcome.loss_curve);
    return loadPretrainedT5(b.ws.model_dir);
}

// ---- experts, gates, multitask ----

// Training records name their data relative to the expert's folder, so the workspace can move.
std::string relativeDataset(const fs::path& data, const fs::path& expert_dir) {
    return data.lexically_relative(expert_dir).generic_string();
}

LoraSettings demoLora(const DemoScale& s, const fs::path& model_dir) {
    LoraSettings lora;
    lora.r = s.lora_rank;
    lora.lora_alpha = s.lora_alpha;
    lora.base_model_name_or_path = model_dir.filename().string();
    return lora;
}

LoraExpert trainOneExpert(Build& b, PretrainedT5& t5, const std::string& stage, const std::string& name,
                          const Dataset& train, const Dataset* valid, int64_t steps, const fs::path& dir) {
    const DemoScale& s = b.scale();
    ExpertTrainingSettings settings{.name = name, .lora = demoLora(s, b.ws.model_dir)};
    // Linear decay: at a constant rate the small experts keep oscillating around the answer distribution
    // instead of settling on the input-dependent answers (measured on the antonym task, held-in).
    settings.training = {.steps = steps,
                         .learning_rate = s.expert_lr,
                         .schedule = LearningRateSchedule::LinearDecay,
                         .batch_size = s.batch,
                         .seed = b.options.seed,
                         .valid_every = std::max<int64_t>(1, steps / 5)};
    LoraExpert expert =
        ExpertTrainer(*t5.model, *t5.tokenizer, settings).train(train, valid, b.control(stage, name));
    expert.training_record->dataset = relativeDataset(train.path, dir);
    saveLoraExpert(expert, dir);
    recordTraining(b, kTrainExpertRun, name,
                   {{"expert", name},
                    {"steps", steps},
                    {"learning_rate", s.expert_lr},
                    {"batch_size", s.batch},
                    {"rank", s.lora_rank},
                    {"alpha", s.lora_alpha},
                    {"seed", b.options.seed}},
                   expert.training_record->loss_curve);
    return expert;
}

void trainExperts(Build& b, PretrainedT5& t5) {
    for (const WorkspaceTask& t : b.ws.tasks) {
        if (t.role != TaskRole::HeldIn) continue;
        const Dataset train = loadJsonl(t.train), valid = loadJsonl(t.valid);
        trainOneExpert(b, t5, "experts", t.name, train, &valid, b.scale().expert_steps,
                       b.ws.experts_dir / t.name);
    }
}

void trainGates(Build& b, PretrainedT5& t5) {
    TrainingOptions o = gateTrainingDefaults();
    o.steps = b.scale().gate_steps;
    o.batch_size = b.scale().batch;
    o.seed = b.options.seed;
    for (const WorkspaceTask& t : b.ws.tasks) {
        if (t.role != TaskRole::HeldIn) continue;
        const fs::path dir = b.ws.experts_dir / t.name;
        const LoraExpert expert = loadLoraExpert(dir, t5.config);
        LoraExpert gated = GateTrainer(*t5.model, *t5.tokenizer, o)
                               .train(expert, loadJsonl(t.train), b.control("gates", t.name));
        gated.gate_record->dataset = relativeDataset(t.train, dir);
        saveGate(gated, dir);
        recordTraining(b, kTrainGateRun, t.name,
                       {{"expert", t.name},
                        {"steps", o.steps},
                        {"learning_rate", o.learning_rate},
                        {"batch_size", o.batch_size},
                        {"seed", o.seed}},
                       gated.gate_record->loss_curve);
    }
}

// One LoRA on the union of the held-in training sets: the paper's upper reference, which needs all the
// data at once (not a post-hoc method).
void trainMultitask(Build& b, PretrainedT5& t5) {
    b.ws.multitask_dir = b.ws.root / "baselines" / "multitask";
    Dataset all;
    all.path = b.ws.multitask_dir / "train.jsonl";
    all.name = "multitask";
    for (const WorkspaceTask& t : b.ws.tasks)
        if (t.role == TaskRole::HeldIn)
            for (Example e : loadJsonl(t.train).examples) {
                e.line = int64_t(all.examples.size()) + 1;
                all.examples.push_back(std::move(e));
            }
    trainOneExpert(b, t5, "multitask", "multitask", all, nullptr, b.scale().multitask_steps,
                   b.ws.multitask_dir);
    // Beside the expert it trained (its training record names it), written after the expert folder exists:
    // saving an expert replaces only a folder that holds nothing but an expert's files.
    writeJsonl(all.path, all.examples);
}

// ---- the held-out rule ----

double chanceOf(const Dataset& d) {
    double sum = 0.0;
    for (const Example& e : d.examples) sum += e.choices.empty() ? 0.0 : 100.0 / double(e.choices.size());
    return d.examples.empty() ? 0.0 : sum / double(d.examples.size());
}

// The base model and each skill expert alone on every held-out candidate (one evaluation run, kept in the
// database), judged by the scale's rule; the rejected candidates leave the workspace with their data. No
// router has run on any candidate yet.
void applyHeldOutRule(Build& b, PretrainedT5& t5) {
    std::vector<Dataset> datasets;
    std::vector<std::string> skills;
    for (const WorkspaceTask& t : b.ws.tasks) {
        if (t.role != TaskRole::HeldOut) continue;
        datasets.push_back(loadJsonl(t.test));
        const std::string& skill = findDemoTask(t.name).skill;
        if (std::find(skills.begin(), skills.end(), skill) == skills.end()) skills.push_back(skill);
    }
    if (datasets.empty()) return;
    std::string methods = "base";
    for (const std::string& s : skills) methods += ",single:" + s;
    const std::vector<LoraExpert> experts = ExpertLibrary::open(b.ws.experts_dir, t5.config).experts();
    Evaluator evaluator(*t5.model, *t5.tokenizer, experts);
    EvalSettings settings{
        .methods = parseEvalMethods(methods, b.scale().top_k), .batch_size = 32, .max_new_tokens = 8};
    EvalHooks hooks;
    hooks.cancel = b.cancel;
    hooks.progress = [&](const EvalProgress& p) {
        b.say({.stage = "held-out rule",
               .item = p.method + " on " + p.dataset,
               .done = p.done,
               .total = p.total});
    };
    ResultsStore store(b.ws.database);
    const json extra{
        {"workspace", "demo"},
        {"experts", "experts"},
        {"purpose", "held-out rule: the base model and each skill expert alone on the candidates"},
        {"rule", heldOutRuleJson(b.scale().rule, {}).at("rule")}};
    const StoredEvaluation stored =
        evaluateIntoStore(evaluator, store, datasets, settings, hooks,
                          evalSettingsJson(datasets, settings, extra.dump()), b.options.version);
    if (stored.result.cancelled) throw Error("demo build cancelled during the held-out rule");
    auto score = [&](const std::string& method, size_t dataset) {
        for (const EvalCell& c : stored.result.cells)
            if (c.method == method && c.dataset_index == dataset) return c.score.value;
        throw Error("held-out rule: no score of " + method + " on " + datasets[dataset].name);
    };
    std::vector<WorkspaceTask> kept;
    size_t d = 0;
    for (const WorkspaceTask& t : b.ws.tasks) {
        if (t.role != TaskRole::HeldOut) {
            kept.push_back(t);
            continue;
        }
        const std::string& skill = findDemoTask(t.name).skill;
        const HeldOutVerdict v = judgeHeldOut(b.scale().rule, t.name, skill, chanceOf(datasets[d]),
                                              score("base", d), score("single:" + skill, d));
        ++d;
        b.report.held_out.push_back(v);
        if (v.kept)
            kept.push_back(t);
        else
            fs::remove(t.test);
    }
    b.ws.tasks = kept;
    writeFileAtomically(b.ws.root / "held_out_rule.json",
                        heldOutRuleJson(b.scale().rule, b.report.held_out).dump(2) + "\n");
}

// ---- evaluation ----

void evaluate(Build& b, PretrainedT5& t5) {
    std::vector<Dataset> datasets;
    for (const fs::path& p : b.ws.testSets()) datasets.push_back(loadJsonl(p));
    ResultsStore store(b.ws.database);
    EvalHooks hooks;
    hooks.cancel = b.cancel;
    hooks.progress = [&](const EvalProgress& p) {
        b.say(
            {.stage = "evaluation", .item = p.method + " on " + p.dataset, .done = p.done, .total = p.total});
    };

    // Every routing method over the library, and each expert on its own (the transfer matrix).
    const std::vector<LoraExpert> experts = ExpertLibrary::open(b.ws.experts_dir, t5.config).experts();
    const ExpertExamples examples = loadExpertExamples(experts, *t5.tokenizer);
    std::string methods = "base,merge,retrieval,average-activation,arrow,phatgoose";
    for (const LoraExpert& e : experts) methods += ",single:" + e.name;
    EvalSettings settings{
        .methods = parseEvalMethods(methods, b.scale().top_k), .batch_size = 32, .max_new_tokens = 8};
    Evaluator routed(*t5.model, *t5.tokenizer, experts, &examples);
    const json extra{{"workspace", "demo"}, {"experts", "experts"}};
    if (evaluateIntoStore(routed, store, datasets, settings, hooks,
                          evalSettingsJson(datasets, settings, extra.dump()), b.options.version)
            .result.cancelled)
        throw Error("demo build cancelled during evaluation");

    // The multitask LoRA, as the single expert of its own library.
    const std::vector<LoraExpert> multitask = {loadLoraExpert(b.ws.multitask_dir, t5.config)};
    EvalSettings upper{
        .methods = {{"multitask", RoutingSpec{.method = routingMethodName(RoutingMethodId::Single),
                                              .expert = "multitask"}}},
        .batch_size = 32,
        .max_new_tokens = 8};
    Evaluator reference(*t5.model, *t5.tokenizer, multitask);
    const json upper_extra{{"workspace", "demo"}, {"experts", "baselines/multitask"}};
    if (evaluateIntoStore(reference, store, datasets, upper, hooks,
                          evalSettingsJson(datasets, upper, upper_extra.dump()), b.options.version)
            .result.cancelled)
        throw Error("demo build cancelled during evaluation");
}

// "DIR/" and "DIR" name the same folder; the partial folder must sit beside it, never inside.
fs::path outputFolder(const fs::path& out) {
    const fs::path p = fs::absolute(out).lexically_normal();
    return p.has_filename() ? p : p.parent_path();
}

// Replace only what we made: an existing DIR is replaced only with --replace, and only when it is a
// workspace (its workspace.json opens as one). A home folder, ".", or any other folder is refused.
void checkOutput(const DemoBuildOptions& o, const fs::path& out) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(out, ec))) return;
    if (!o.replace) throw Error(out.string() + ": already exists (choose another folder, or replace it)");
    if (!fs::is_directory(fs::symlink_status(out, ec)) || !fs::is_regular_file(out / "workspace.json"))
        throw Error(out.string() +
                    ": is not a workspace (no workspace.json); --replace replaces only a "
                    "workspace this program made");
    try {
        openWorkspace(out);
    } catch (const Error& e) {
        throw Error(out.string() + ": is not a workspace that --replace may replace (" + e.what() + ")");
    }
}

void finish(Build& b, const fs::path& out) {
    fs::remove_all(b.ws.root / ".build");
    saveWorkspaceManifest(b.ws);
    openWorkspace(b.ws.root);  // what was written must open
    replaceFolder(out, b.ws.root);
}

}  // namespace

DemoScale DemoScale::full() {
    DemoScale s;
    s.model = tinyT5(160, 320, 4, 3);
    // An upper bound (hard_vocab_limit off): enough for every word of the suite to be one piece.
    s.vocab_pieces = 2000;
    s.train_per_task = 600;
    s.valid_per_task = 64;
    s.test_per_task = 100;
    s.pretrain_steps = 600;
    s.pretrain_batch = 32;
    s.pretrain_lr = 3e-3;
    s.expert_steps = 250;
    s.multitask_steps = 600;
    s.gate_steps = 100;
    s.batch = 32;
    s.expert_lr = 3e-3;
    s.lora_rank = 8;
    s.lora_alpha = 16;
    return s;
}

DemoScale DemoScale::quick() {
    DemoScale s;
    s.model = tinyT5(32, 64, 2, 1);
    s.vocab_pieces = 200;
    s.train_per_task = 24;
    s.valid_per_task = 8;
    s.test_per_task = 8;
    s.pretrain_steps = 8;
    s.pretrain_batch = 8;
    s.pretrain_lr = 3e-3;
    s.expert_steps = 4;
    s.multitask_steps = 4;
    s.gate_steps = 4;
    s.batch = 8;
    s.expert_lr = 5e-3;
    s.lora_rank = 4;
    s.lora_alpha = 8;
    return s;
}

DemoBuildReport buildDemoWorkspace(const DemoBuildOptions& options, const Progress& progress,
                                   const std::atomic<bool>* cancel) {
    if (options.out.empty()) throw Error("demo build: no output folder given");
    const fs::path out = outputFolder(options.out);
    checkOutput(options, out);
    std::error_code ec;
    fs::create_directories(out.parent_path(), ec);
    if (ec) throw Error(out.string() + ": cannot create its folder (" + ec.message() + ")");
    const auto start = Clock::now();
    // Built in a fresh, uniquely named folder beside DIR and swapped in only when complete.
    Build b{options, progress, cancel, defaultWorkspace(makeStagingFolder(out, "partial")), {}};
    b.ws.name = "PHATGOOSE demo: synthetic word and number tasks";
    try {
        b.stage("data", [&] { writeTaskData(b); });
        b.stage("tokenizer", [&] { trainTokenizer(b); });
        PretrainedT5 t5;
        b.stage("pre-training", [&] { t5 = pretrain(b); });
        b.stage("experts", [&] { trainExperts(b, t5); });
        b.stage("gates", [&] { trainGates(b, t5); });
        b.stage("multitask", [&] { trainMultitask(b, t5); });
        b.stage("held-out rule", [&] { applyHeldOutRule(b, t5); });
        b.stage("evaluation", [&] { evaluate(b, t5); });
        finish(b, out);
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(b.ws.root, ignored);
        throw;
    }
    b.report.workspace = out;
    b.report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return b.report;
}

}  // namespace phatgoose
