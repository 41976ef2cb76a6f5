// The expert and gate trainers (library and `phatgoose train-expert / train-gate`) on a tiny random T5:
// they learn, they touch only what they train, they are reproducible, and a cancelled or failed run
// leaves the model clean and writes nothing.
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "data/dataset.h"
#include "error.h"
#include "fixtures/cli_run.h"
#include "fixtures/tiny_t5.h"
#include "model/t5_loader.h"
#include "store/results_store.h"
#include "training/expert_trainer.h"
#include "training/gate_trainer.h"
#include "training/trainable_lora.h"
#include "training/training_loop.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

using TensorMap = std::map<std::string, torch::Tensor>;

TensorMap baseCopies(T5ModelImpl& model) {
    TensorMap out;
    for (const auto& p : model.named_parameters()) out[p.key()] = p.value().detach().clone();
    return out;
}

TensorMap loraCopies(const LoraExpert& e, bool gates = false) {
    TensorMap out;
    for (const auto& [path, m] : e.modules) {
        if (gates) {
            out[path + ".gate"] = m.gate.detach().clone();
            continue;
        }
        out[path + ".A"] = m.A.detach().clone();
        out[path + ".B"] = m.B.detach().clone();
    }
    return out;
}

bool identical(const TensorMap& a, const TensorMap& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [name, t] : a)
        if (!b.count(name) || !torch::equal(t, b.at(name))) return false;
    return true;
}

// No adapter left on any linear layer and no base weight that autograd would track.
bool isClean(T5ModelImpl& model) {
    for (const auto& entry : model.linears())
        if (entry.second->adapter()) return false;
    for (const auto& p : model.parameters())
        if (p.requires_grad()) return false;
    return true;
}

double meanOf(const std::vector<double>& v, size_t from, size_t count) {
    double sum = 0;
    for (size_t i = from; i < from + count; ++i) sum += v.at(i);
    return sum / double(count);
}

using Run = phatgoose::testing::CliRun;
const auto cli = phatgoose::testing::runPhatgoose;

bool oneLine(const std::string& s) {
    return !s.empty() && s.find('\n') == s.size() - 1;
}

// A task the tiny model can memorise: 16 prompts, each with its own one- or two-word answer.
std::string memorisableTask() {
    const char* verbs[] = {"reverse the word", "count letters in", "copy the sentence", "what is the first"};
    const char* nouns[] = {"apple", "banana", "cherry", "seven"};
    const char* answers[] = {"nine", "three", "last", "first", "seven", "apple", "two", "banana"};
    std::string text;
    for (int i = 0; i < 16; ++i) {
        nlohmann::json line{{"input", std::string(verbs[i % 4]) + " " + nouns[i / 4]},
                            {"target", answers[(i * 5 + i / 4) % 8]}};
        text += line.dump() + "\n";
    }
    return text;
}

}  // namespace

class TrainingTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root_, model_dir_, train_path_, valid_path_;
    std::optional<LoraExpert> trained_;  // trained once, shared by the gate tests

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path path = root_ / name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    static ExpertTrainingSettings quickExpert(int64_t steps, uint64_t seed) {
        ExpertTrainingSettings s;
        s.name = "memorise";
        s.lora.r = 8;
        s.lora.lora_alpha = 16;  // scale 2: a tiny model learns in tens of steps, not the paper's 1000
        s.training.steps = steps;
        s.training.learning_rate = 1e-2;
        s.training.batch_size = 8;
        s.training.seed = seed;
        return s;
    }

    const LoraExpert& trainedExpert() {
        if (!trained_) {
            PretrainedT5 t5 = loadPretrainedT5(model_dir_);
            trained_ =
                ExpertTrainer(*t5.model, *t5.tokenizer, quickExpert(100, 1)).train(loadJsonl(train_path_));
        }
        return *trained_;
    }

    // A copy of the tiny model folder with a NaN in one base weight: every loss on it is NaN.
    fs::path poisonedModel() {
        const fs::path dir = root_ / "poisoned";
        if (fs::exists(dir / "model.safetensors")) return dir;
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        {
            torch::NoGradGuard no_grad;
            t5.model->encoder->blocks[0]->layers[0]->attention->q->weight[0][0] = std::nanf("");
        }
        saveT5(dir, *t5.model);
        for (const char* file : {"spiece.model", "tokenizer_config.json"})
            fs::copy_file(model_dir_ / file, dir / file);
        return dir;
    }

private Q_SLOTS:
    void initTestCase() {
        root_ = tmp_.path().toStdString();
        // v1.1 (untied head): a tied v1.0 head rescaled by d_model^-0.5 gives this 32-wide random model
        // logits within about +-1, so no adapter could drive its loss far down.
        model_dir_ = phatgoose::testing::writeTinyT5(root_ / "tiny", {.gated = true});
        train_path_ = write("memorise.jsonl", memorisableTask());
        valid_path_ = write("memorise-valid.jsonl", memorisableTask());
    }

    void learningRateScheduleHasClosedForm() {
        TrainingOptions o;
        o.steps = 100;
        o.learning_rate = 0.01;
        o.warmup_fraction = 0.06;
        QCOMPARE(warmupSteps(o), int64_t(6));
        QCOMPARE(learningRateAt(o, 1), 0.01 / 6);
        QCOMPARE(learningRateAt(o, 3), 0.01 * 3 / 6);
        QCOMPARE(learningRateAt(o, 6), 0.01);
        QCOMPARE(learningRateAt(o, 7), 0.01);
        QCOMPARE(learningRateAt(o, 100), 0.01);
        o.schedule = LearningRateSchedule::LinearDecay;
        QCOMPARE(learningRateAt(o, 6), 0.01);
        QCOMPARE(learningRateAt(o, 7), 0.01);
        QCOMPARE(learningRateAt(o, 50), 0.01 * 51 / 94);
        QCOMPARE(learningRateAt(o, 100), 0.01 / 94);
        o.warmup_fraction = 0;
        QCOMPARE(learningRateAt(o, 1), 0.01);
        QCOMPARE(learningRateAt(o, 100), 0.01 / 100);
        QCOMPARE(warmupSteps(gateTrainingDefaults()), int64_t(6));  // 6 % of 100
    }

    void progressReportsTheScheduledRate() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        ExpertTrainingSettings s = quickExpert(10, 0);
        s.training.warmup_fraction = 0.3;
        s.training.schedule = LearningRateSchedule::LinearDecay;
        std::vector<TrainingProgress> seen;
        ExpertTrainer(*t5.model, *t5.tokenizer, s)
            .train(loadJsonl(train_path_), nullptr, {[&](const TrainingProgress& p) { seen.push_back(p); }});
        QCOMPARE(seen.size(), size_t(10));
        for (const TrainingProgress& p : seen) {
            QCOMPARE(p.learning_rate, learningRateAt(s.training, p.step));
            QCOMPARE(p.total_steps, int64_t(10));
            QVERIFY(p.tokens_per_s > 0);
            QVERIFY(!p.valid_loss);
        }
        QCOMPARE(seen.back().eta_s, 0.0);
    }

    void expertTrainingLearnsAndTouchesOnlyLora() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        const TensorMap base = baseCopies(*t5.model);
        ExpertTrainer trainer(*t5.model, *t5.tokenizer, quickExpert(100, 1));
        const LoraExpert e = trainer.train(loadJsonl(train_path_));
        const TrainingRecord& r = e.training_record.value();
        QCOMPARE(r.steps, int64_t(100));
        QCOMPARE(r.loss_curve.size(), size_t(100));
        QCOMPARE(r.dataset, train_path_.string());
        QCOMPARE(r.task, std::string("memorise"));
        const double initial = meanOf(r.loss_curve, 0, 3), final = meanOf(r.loss_curve, 97, 3);
        qInfo("expert loss %.3f -> %.3f", initial, final);
        QVERIFY2(final < 0.5 * initial, qPrintable(QString("loss %1 -> %2").arg(initial).arg(final)));
        QCOMPARE(r.final_loss, r.loss_curve.back());
        QVERIFY(identical(base, baseCopies(*t5.model)));  // the base, bit for bit
        QVERIFY(isClean(*t5.model));
        // Every linear layer by default, each with a trained (non-zero) B and no gate.
        QCOMPARE(e.modules.size(), t5.model->linears().size());
        for (const auto& [path, m] : e.modules) {
            QVERIFY(m.B.abs().max().item<float>() > 0);
            QVERIFY(!m.gate.defined());
            QVERIFY(!m.A.requires_grad());
        }
        // The trained weights are what the model computes with: the loss on the data is low.
        AttachedExpert attached(*t5.model, e, GateUse::Ignore);
        const auto pairs =
            tokenizeForTraining(loadJsonl(train_path_), *t5.tokenizer, t5.config, TrainingOptions{});
        QVERIFY(meanLoss(*t5.model, pairs, 8) < 0.5 * initial);
    }

    void sameSeedSameWeightsBitForBit() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        const Dataset data = loadJsonl(train_path_);
        auto train = [&](uint64_t seed) {
            return loraCopies(ExpertTrainer(*t5.model, *t5.tokenizer, quickExpert(12, seed)).train(data));
        };
        const TensorMap a = train(5), b = train(5), c = train(6);
        QVERIFY(identical(a, b));
        QVERIFY(!identical(a, c));
    }

    void validationKeepsTheBestCheckpoint() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        ExpertTrainingSettings s = quickExpert(30, 2);
        s.training.valid_every = 7;
        s.training.learning_rate = 0.05;  // high enough that validation loss is not monotone
        const Dataset train = loadJsonl(train_path_), valid = loadJsonl(valid_path_);
        std::vector<std::pair<int64_t, double>> passes;
        const LoraExpert e =
            ExpertTrainer(*t5.model, *t5.tokenizer, s).train(train, &valid, {[&](const TrainingProgress& p) {
                                                                 if (p.valid_loss)
                                                                     passes.emplace_back(p.step,
                                                                                         *p.valid_loss);
                                                             }});
        QCOMPARE(passes.size(), size_t(5));  // steps 7, 14, 21, 28 and the last
        QCOMPARE(passes.back().first, int64_t(30));
        double best = passes.front().second;
        for (const auto& pass : passes) best = std::min(best, pass.second);
        QCOMPARE(e.training_record->best_valid_loss, best);
        AttachedExpert attached(*t5.model, e, GateUse::Ignore);
        const auto pairs = tokenizeForTraining(valid, *t5.tokenizer, t5.config, s.training);
        QCOMPARE(meanLoss(*t5.model, pairs, s.training.batch_size),
                 best);  // the returned weights are the best
    }

    void targetThatTokenizesToNothingNamesFileAndLine() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        const fs::path path = write("empty-target.jsonl",
                                    "{\"input\": \"add two\", \"target\": \"seven\"}\n"
                                    "{\"input\": \"add two\", \"target\": \"  \"}\n");
        try {
            ExpertTrainer(*t5.model, *t5.tokenizer, quickExpert(1, 0)).train(loadJsonl(path));
            QFAIL("an empty target was accepted");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).rfind(path.string() + ":2: ", 0) == 0, e.what());
            QVERIFY2(std::string(e.what()).find("tokenizes to nothing") != std::string::npos, e.what());
        }
        QVERIFY(isClean(*t5.model));
    }

    void truncationKeepsEos() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        TrainingOptions o;
        o.max_input_tokens = 3;
        o.max_target_tokens = 2;
        const auto pairs = tokenizeForTraining(loadJsonl(train_path_), *t5.tokenizer, t5.config, o);
        for (const TrainingPair& p : pairs) {
            QVERIFY(p.input.size() <= 3 && p.target.size() == 2);
            QCOMPARE(p.input.back(), Tokenizer::kEos);
            QCOMPARE(p.target.back(), Tokenizer::kEos);
        }
    }

    void gateTrainingTrainsOnlyTheGates() {
        const LoraExpert& expert = trainedExpert();
        const TensorMap weights = loraCopies(expert);
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        const TensorMap base = baseCopies(*t5.model);
        TrainingOptions o = gateTrainingDefaults();
        o.steps = 60;
        o.learning_rate = 5e-2;
        GateTrainer trainer(*t5.model, *t5.tokenizer, o);
        const LoraExpert gated = trainer.train(expert, loadJsonl(train_path_));
        QVERIFY(gated.hasGate());
        QVERIFY(!expert.hasGate());  // the input is left as it was
        QVERIFY(identical(base, baseCopies(*t5.model)));
        QVERIFY(identical(weights, loraCopies(expert)));
        QVERIFY(identical(weights, loraCopies(gated)));
        QVERIFY(isClean(*t5.model));
        for (const auto& [path, m] : gated.modules) {
            QCOMPARE(m.gate.sizes().vec(), std::vector<int64_t>{m.A.size(1)});
            QVERIFY(!m.A.requires_grad() && !m.B.requires_grad() && !m.gate.requires_grad());
            QVERIFY(!m.A.grad().defined() &&
                    !m.B.grad().defined());                 // no gradient was ever computed for them
            QVERIFY(m.gate.abs().max().item<float>() > 0);  // moved from zero
        }
        const GateRecord& r = gated.gate_record.value();
        QCOMPARE(r.steps, int64_t(60));
        QCOMPARE(r.learning_rate, 5e-2);
        QCOMPARE(r.batch_size, o.batch_size);
        QCOMPARE(r.dataset, train_path_.string());
        QCOMPARE(r.loss_curve.size(), size_t(60));
        const double initial = meanOf(r.loss_curve, 0, 3), final = meanOf(r.loss_curve, 57, 3);
        qInfo("gate loss %.4f -> %.4f", initial, final);
        QVERIFY2(final < initial, qPrintable(QString("loss %1 -> %2").arg(initial).arg(final)));
    }

    // Dropout (config.json's dropout_rate, or TrainingOptions::dropout over it) changes training and nothing
    // else: inference gives the same logits at any rate, a training-mode pass drops at random, a gate trained
    // with dropout differs from one trained without, and after training the model is back in inference mode
    // at its own rate.
    void dropoutChangesTrainingNotInference() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        QCOMPARE(t5.config.dropout_rate, 0.1);  // Hugging Face's default: the tiny config.json names none
        QVERIFY(!t5.model->is_training());
        const torch::Tensor ids = torch::tensor(std::vector<int64_t>{5, 17, 33, 9, 1}).unsqueeze(0);
        const torch::Tensor dec = torch::tensor(std::vector<int64_t>{0, 7, 19}).unsqueeze(0);
        auto logits = [&] {
            torch::NoGradGuard no_grad;
            return t5.model->decode(dec, t5.model->encode(ids, torch::ones_like(ids)), torch::ones_like(ids));
        };
        const torch::Tensor inference = logits();
        t5.model->setDropoutRate(0.5);
        QVERIFY(torch::equal(logits(), inference));
        t5.model->train(true);
        const torch::Tensor dropped = logits(), again = logits();
        t5.model->train(false);
        t5.model->setDropoutRate(0.1);
        QVERIFY((dropped - inference).abs().max().item<double>() > 1e-3);
        QVERIFY((dropped - again).abs().max().item<double>() > 1e-3);
        QVERIFY(torch::equal(logits(), inference));
        // No dropout at all in training mode is the inference forward.
        t5.model->setDropoutRate(0.0);
        t5.model->train(true);
        QVERIFY(torch::allclose(logits(), inference, 1e-5, 1e-6));
        t5.model->train(false);
        t5.model->setDropoutRate(0.1);

        const LoraExpert& expert = trainedExpert();
        auto gateCurve = [&](double dropout) {
            TrainingOptions o = gateTrainingDefaults();
            o.steps = 5;
            o.dropout = dropout;
            const LoraExpert gated = GateTrainer(*t5.model, *t5.tokenizer, o).train(expert, loadJsonl(train_path_));
            return gated.gate_record->loss_curve;
        };
        const std::vector<double> none = gateCurve(0.0), model_rate = gateCurve(-1.0), heavy = gateCurve(0.3);
        QCOMPARE(gateCurve(0.0), none);        // without dropout, reproducible bit for bit
        QCOMPARE(gateCurve(-1.0), model_rate);  // with it, the seed fixes the masks too
        QVERIFY(none != model_rate && model_rate != heavy && none != heavy);
        QVERIFY(!t5.model->is_training());
        QCOMPARE(t5.model->dropoutRate(), 0.1);
        QVERIFY(torch::equal(logits(), inference));
    }

    // The presets are data in the backend: "paper" holds the authors' settings (r-three/phatgoose,
    // colm/experiments/train.gin and train_single_task.gin: AdamW lr 5e-3, weight decay 0, constant after 6 %
    // warm-up, gradient accumulation 32 over batches of 32; gates 100 steps, experts 1000), "quick" is the
    // default.
    void presetsHoldThePapersSettings() {
        for (const char* kind : {kTrainGateRun, kTrainExpertRun}) {
            const TrainingOptions& o = trainingPreset(kind, "paper").options;
            QCOMPARE(o.steps, int64_t(std::string(kind) == kTrainGateRun ? 100 : 1000));
            QCOMPARE(o.learning_rate, 5e-3);
            QCOMPARE(o.batch_size, int64_t(32));
            QCOMPARE(o.accumulation_steps, int64_t(32));
            QCOMPARE(o.batch_size * o.accumulation_steps, int64_t(1024));
            QCOMPARE(o.warmup_fraction, 0.06);
            QVERIFY(o.schedule == LearningRateSchedule::Constant);
            QCOMPARE(o.weight_decay, 0.0);
            QCOMPARE(o.max_grad_norm, 1.0);
            QCOMPARE(o.max_input_tokens, int64_t(512));
            QCOMPARE(o.max_target_tokens, int64_t(512));
            QVERIFY(o.dropout < 0);  // the model's dropout_rate
            QCOMPARE(trainingPresets(kind).front().name, std::string("quick"));
        }
        const TrainingOptions& quick = trainingPreset(kTrainGateRun, "quick").options;
        QCOMPARE(quick.batch_size, gateTrainingDefaults().batch_size);
        QCOMPARE(quick.steps, int64_t(100));
        QCOMPARE(quick.accumulation_steps, int64_t(1));
        try {
            trainingPreset(kTrainGateRun, "huge");
            QFAIL("an unknown preset was accepted");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("known: quick, paper"), e.what());
        }
        // The CLI starts from --preset and lets each given option override it; the run records the result.
        const fs::path db = root_ / "preset.sqlite", expert_dir = root_ / "preset-expert";
        saveLoraExpert(trainedExpert(), expert_dir);
        Run r = cli({"train-gate", "--model", model_dir_.string(), "--expert", expert_dir.string(), "--data",
                     train_path_.string(), "--preset", "paper", "--steps", "1", "--accum", "2", "--dropout", "0",
                     "--db", db.string(), "--overwrite"});
        QVERIFY2(r.code == 0, r.err.c_str());
        const auto settings = nlohmann::json::parse(ResultsStore(db).runs().back().settings);
        QCOMPARE(settings.at("batch_size").get<int64_t>(), int64_t(32));
        QCOMPARE(settings.at("accumulation_steps").get<int64_t>(), int64_t(2));
        QCOMPARE(settings.at("steps").get<int64_t>(), int64_t(1));
        QCOMPARE(settings.at("max_input_tokens").get<int64_t>(), int64_t(512));
        QCOMPARE(settings.at("dropout").get<double>(), 0.0);
        r = cli({"train-gate", "--model", model_dir_.string(), "--expert", expert_dir.string(), "--preset", "huge"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.find("known: quick, paper") != std::string::npos, r.err.c_str());
    }

    // The gated LoRA layer, however its tensors are frozen, equals base + sigmoid(x . g) * s * B A x written
    // out by hand, and the gate's gradient equals autograd's through that expression.
    void gatedLoraEqualsTheFormula_data() {
        QTest::addColumn<bool>("train_ab");
        QTest::addColumn<bool>("train_gate");
        QTest::addColumn<bool>("gate_column");
        QTest::newRow("gate training (frozen A, B; gate column)") << false << true << true;
        QTest::newRow("gate training (frozen A, B; gate vector)") << false << true << false;
        QTest::newRow("gated expert applied (all frozen)") << false << false << false;
        QTest::newRow("A and B training under a gate") << true << false << false;
    }
    void gatedLoraEqualsTheFormula() {
        QFETCH(bool, train_ab);
        QFETCH(bool, train_gate);
        QFETCH(bool, gate_column);
        torch::manual_seed(11);
        const int64_t d_in = 24, d_out = 20, r = 5;
        const double scale = 0.7;
        torch::Tensor A = torch::randn({r, d_in}).requires_grad_(train_ab);
        torch::Tensor B = torch::randn({d_out, r}).requires_grad_(train_ab);
        torch::Tensor g = torch::randn({d_in});
        torch::Tensor gate = (gate_column ? g.unsqueeze(1).clone() : g.clone()).requires_grad_(train_gate);
        torch::Tensor x = torch::randn({2, 7, d_in}), base = torch::randn({2, 7, d_out});

        TrainableLora layer(A, B, scale, gate);
        torch::Tensor y = layer.forward(x, base);
        torch::Tensor g_ref = g.clone().requires_grad_(true);
        torch::Tensor y_ref = base + torch::sigmoid(torch::matmul(x, g_ref)).unsqueeze(-1) * scale *
                                         torch::matmul(torch::matmul(x, A.detach().t()), B.detach().t());
        QVERIFY(torch::allclose(y, y_ref, 1e-5, 1e-5));
        if (!train_gate) return;
        torch::Tensor upstream = torch::randn_like(y);
        (y * upstream).sum().backward();
        (y_ref * upstream).sum().backward();
        QVERIFY(torch::allclose(gate.grad().reshape({-1}), g_ref.grad(), 1e-4, 1e-5));
    }

    void gatesStartAtZero() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        const std::atomic<bool> cancel{true};
        GateTrainer trainer(*t5.model, *t5.tokenizer);
        QVERIFY_THROWS_EXCEPTION(TrainingCancelled,
                                 trainer.train(trainedExpert(), loadJsonl(train_path_), {{}, &cancel}));
        const LoraExpert before = trainer.lastGood();
        for (const auto& [path, m] : before.modules) QVERIFY(torch::equal(m.gate, torch::zeros_like(m.gate)));
        QVERIFY(isClean(*t5.model));
    }

    void cancellationStopsAtTheNextStep() {
        PretrainedT5 t5 = loadPretrainedT5(model_dir_);
        std::atomic<bool> cancel{false};
        int64_t last_step = 0;
        ExpertTrainer trainer(*t5.model, *t5.tokenizer, quickExpert(50, 0));
        try {
            trainer.train(loadJsonl(train_path_), nullptr,
                          {[&](const TrainingProgress& p) {
                               last_step = p.step;
                               if (p.step == 3) cancel = true;
                           },
                           &cancel});
            QFAIL("the run was not cancelled");
        } catch (const TrainingCancelled& e) {
            QCOMPARE(e.steps_done, int64_t(3));
            QVERIFY(std::string(e.what()).find("cancelled") != std::string::npos);
        }
        QCOMPARE(last_step, int64_t(3));
        QCOMPARE(trainer.lastGood().training_record->steps, int64_t(3));
        QVERIFY(isClean(*t5.model));
    }

    void nanLossStopsWithClearError() {
        const fs::path poisoned = poisonedModel();
        PretrainedT5 t5 = loadPretrainedT5(poisoned);
        ExpertTrainer trainer(*t5.model, *t5.tokenizer, quickExpert(20, 0));
        try {
            trainer.train(loadJsonl(train_path_));
            QFAIL("a NaN loss went unnoticed");
        } catch (const TrainingDiverged& e) {
            QCOMPARE(std::string(e.what()), std::string("training diverged at step 1: loss is nan"));
        }
        // The update was not applied: the last good state is the initial expert (B = 0).
        const LoraExpert last = trainer.lastGood();
        QCOMPARE(last.training_record->steps, int64_t(0));
        for (const auto& [path, m] : last.modules) QVERIFY(torch::equal(m.B, torch::zeros_like(m.B)));
        QVERIFY(isClean(*t5.model));
        QVERIFY_THROWS_EXCEPTION(
            TrainingDiverged,
            GateTrainer(*t5.model, *t5.tokenizer).train(trainedExpert(), loadJsonl(train_path_)));
        QVERIFY(isClean(*t5.model));
    }

    void reluFamilyTrainsEveryLinear() {
        const fs::path dir = phatgoose::testing::writeTinyT5(root_ / "tiny-relu");
        PretrainedT5 t5 = loadPretrainedT5(dir);
        const LoraExpert e =
            ExpertTrainer(*t5.model, *t5.tokenizer, quickExpert(3, 0)).train(loadJsonl(train_path_));
        QCOMPARE(e.modules.size(), t5.model->linears().size());
        QVERIFY(e.modules.count("decoder.block.0.layer.2.DenseReluDense.wi"));
        const LoraExpert g = GateTrainer(*t5.model, *t5.tokenizer, quickExpert(3, 0).training)
                                 .train(e, loadJsonl(train_path_));
        QVERIFY(g.hasGate());
    }

    void cliTrainsExpertThenGate() {
        const fs::path out = root_ / "cli-expert";
        Run r = cli({"train-expert",
                     "--model",
                     model_dir_.string(),
                     "--data",
                     train_path_.string(),
                     "--valid",
                     valid_path_.string(),
                     "--out",
                     out.string(),
                     "--steps",
                     "20",
                     "--rank",
                     "4",
                     "--alpha",
                     "8",
                     "--lr",
                     "1e-2",
                     "--valid-every",
                     "10",
                     "--targets",
                     "q,v,wo",
                     "--schedule",
                     "linear"});
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY2(oneLine(r.out), r.out.c_str());
        QVERIFY(r.out.find("trained expert 'cli-expert'") != std::string::npos);
        QVERIFY(r.err.find("step 20/20") != std::string::npos);
        QVERIFY(r.err.find("tokens/s") != std::string::npos);
        PretrainedT5 t5 = loadPretrainedT5(model_dir_, {.load_tokenizer = false});
        LoraExpert e = loadLoraExpert(out, t5.config);
        QCOMPARE(e.settings.r, int64_t(4));
        QVERIFY(!e.hasGate());
        QCOMPARE(e.modules.size(), size_t(2 * 3 + 3 * 5));  // q, v, wo: 2 encoder and 3 decoder blocks

        r = cli({"train-gate", "--model", model_dir_.string(), "--expert", out.string(), "--data",
                 train_path_.string(), "--steps", "10", "--batch", "4", "--seed", "3"});
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY2(oneLine(r.out), r.out.c_str());
        e = loadLoraExpert(out, t5.config);
        QVERIFY(e.hasGate());
        QCOMPARE(e.gate_record->steps, int64_t(10));
        QCOMPARE(e.gate_record->batch_size, int64_t(4));
        QCOMPARE(e.gate_record->seed, uint64_t(3));
        QCOMPARE(e.training_record->steps, int64_t(20));

        // Neither an expert nor a gate is replaced without --overwrite.
        r = cli({"train-expert", "--model", model_dir_.string(), "--data", train_path_.string(), "--out",
                 out.string()});
        QCOMPARE(r.code, 1);
        QVERIFY2(oneLine(r.err) && r.err.find("--overwrite") != std::string::npos, r.err.c_str());
        r = cli({"train-gate", "--model", model_dir_.string(), "--expert", out.string(), "--data",
                 train_path_.string()});
        QCOMPARE(r.code, 1);
        QVERIFY2(oneLine(r.err) && r.err.find("already has a gate") != std::string::npos, r.err.c_str());
        // --db records the run with the same loss curve as the gate's own record.
        const fs::path db = out.parent_path() / "cli.sqlite";
        r = cli({"train-gate", "--model", model_dir_.string(), "--expert", out.string(), "--data",
                 train_path_.string(), "--steps", "2", "--overwrite", "--db", db.string()});
        QVERIFY2(r.code == 0, r.err.c_str());
        const GateRecord gate = *loadLoraExpert(out, t5.config).gate_record;
        QCOMPARE(gate.steps, int64_t(2));
        ResultsStore store(db);
        QCOMPARE(int(store.runs().size()), 1);
        QCOMPARE(QString::fromStdString(store.runs()[0].kind), QString("train-gate"));
        QCOMPARE(QString::fromStdString(store.runs()[0].status), QString("finished"));
        const std::vector<LossPoint> curve = store.lossCurve(store.runs()[0].id);
        QCOMPARE(curve.size(), gate.loss_curve.size());
        for (size_t i = 0; i < curve.size(); ++i) {
            QCOMPARE(curve[i].step, int64_t(i + 1));
            QCOMPARE(curve[i].loss, gate.loss_curve[i]);
            QCOMPARE(QString::fromStdString(curve[i].kind), QString("gate"));
        }
    }

    void cliErrorsAreOneLine_data() {
        QTest::addColumn<QString>("data");
        QTest::addColumn<bool>("with_out");
        QTest::addColumn<QString>("message");
        QTest::addColumn<int>("code");  // 2: the command line itself is wrong; 1: anything else
        QTest::newRow("empty training file")
            << QString("") << true << QString("the dataset holds no examples") << 1;
        QTest::newRow("malformed training file")
            << QString("{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": ") << true
            << QString(":2: malformed JSON") << 1;
        QTest::newRow("missing --out") << QString("{\"input\": \"a\", \"target\": \"b\"}\n") << false
                                       << QString("--out EXPERT_DIR is required") << 2;
    }
    void cliErrorsAreOneLine() {
        QFETCH(QString, data);
        QFETCH(bool, with_out);
        QFETCH(QString, message);
        QFETCH(int, code);
        const fs::path path = write("cli-bad.jsonl", data.toStdString());
        const fs::path out = root_ / "cli-bad-expert";
        std::vector<std::string> args{"train-expert", "--model", model_dir_.string(), "--data",
                                      path.string()};
        if (with_out) args.insert(args.end(), {"--out", out.string()});
        const Run r = cli(args);
        QCOMPARE(r.code, code);
        QVERIFY2(oneLine(r.err), r.err.c_str());
        QVERIFY2(r.err.find(message.toStdString()) != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(out));
    }

    void cliFailedRunWritesNothing() {
        const fs::path out = root_ / "diverged-expert";
        const std::vector<std::string> args{"train-expert",
                                            "--model",
                                            poisonedModel().string(),
                                            "--data",
                                            train_path_.string(),
                                            "--out",
                                            out.string(),
                                            "--steps",
                                            "5"};
        Run r = cli(args);
        QCOMPARE(r.code, 1);
        QVERIFY2(
            oneLine(r.err) && r.err.find("training diverged at step 1: loss is nan") != std::string::npos,
            r.err.c_str());
        QVERIFY(!fs::exists(out));
        // Asked for, the last good state (here the fresh expert) is saved, and the run still fails.
        std::vector<std::string> keep = args;
        keep.push_back("--save-last-good");
        r = cli(keep);
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.find("were saved") != std::string::npos, r.err.c_str());
        PretrainedT5 t5 = loadPretrainedT5(model_dir_, {.load_tokenizer = false});
        QCOMPARE(loadLoraExpert(out, t5.config).training_record->steps, int64_t(0));
    }
};

QTEST_GUILESS_MAIN(TrainingTest)
#include "test_training.moc"
