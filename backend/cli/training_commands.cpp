// train-expert, train-gate: the trainers from the command line, with progress on stderr, Ctrl-C as
// cancellation, and atomic saving only after a run that finished.
#include <QString>
#include <QStringList>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/command.h"
#include "cli/interrupt_guard.h"
#include "error.h"
#include "eval/dataset.h"
#include "experts/lora_expert.h"
#include "model/t5_loader.h"
#include "store/results_store.h"
#include "training/expert_trainer.h"
#include "training/gate_trainer.h"

#ifndef PHATGOOSE_VERSION
#define PHATGOOSE_VERSION "unknown"
#endif

namespace phatgoose {
namespace {

namespace fs = std::filesystem;

std::string required(const CommandContext& ctx, const QString& option, const char* what) {
    if (!ctx.parser.isSet(option)) throw Error("--" + option.toStdString() + " " + what + " is required");
    return ctx.value(option);
}

double number(const CommandContext& ctx, const QString& option, double min) {
    bool ok = false;
    const double v = ctx.parser.value(option).toDouble(&ok);
    if (!ok || !std::isfinite(v) || v < min)
        throw Error("--" + option.toStdString() + " must be a number of at least " +
                    QString::number(min).toStdString() + ", got '" + ctx.value(option) + "'");
    return v;
}

LearningRateSchedule schedule(const CommandContext& ctx) {
    const std::string s = ctx.value("schedule");
    if (s == "constant") return LearningRateSchedule::Constant;
    if (s == "linear") return LearningRateSchedule::LinearDecay;
    throw Error("--schedule must be 'constant' or 'linear', got '" + s + "'");
}

TrainingOptions trainingOptions(const CommandContext& ctx, TrainingOptions o) {
    o.steps = ctx.integer("steps", 1);
    o.learning_rate = number(ctx, "lr", 0);
    o.batch_size = ctx.integer("batch", 1);
    o.accumulation_steps = ctx.integer("accum", 1);
    o.seed = uint64_t(ctx.integer("seed", 0));
    o.warmup_fraction = number(ctx, "warmup", 0);
    o.schedule = schedule(ctx);
    o.max_grad_norm = number(ctx, "clip", 0);
    o.weight_decay = number(ctx, "weight-decay", 0);
    o.max_input_tokens = ctx.integer("max-input-tokens", 2);
    o.max_target_tokens = ctx.integer("max-target-tokens", 2);
    return o;
}

std::string duration(double seconds) {
    const long s = std::lround(seconds);
    char text[32];
    if (s >= 3600)
        std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else
        std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
    return text;
}

// About twenty lines a run, plus every validation pass and the last step.
ProgressCallback progressPrinter(std::ostream& err, const char* what) {
    return [&err, what](const TrainingProgress& p) {
        const int64_t every = std::max<int64_t>(1, p.total_steps / 20);
        if (p.step != 1 && p.step % every != 0 && p.step != p.total_steps && !p.valid_loss) return;
        char line[256];
        std::snprintf(line, sizeof line, "%s step %lld/%lld  loss %.4f  lr %.2e  %.0f tokens/s  ETA %s", what,
                      (long long)p.step, (long long)p.total_steps, p.loss, p.learning_rate, p.tokens_per_s,
                      duration(p.eta_s).c_str());
        err << line;
        if (p.valid_loss) err << "  valid loss " << *p.valid_loss;
        err << std::endl;
    };
}

void refuseExistingExpert(const fs::path& out, bool overwrite) {
    if (fs::exists(out / "adapter_config.json") && !overwrite)
        throw Error(out.string() + ": already holds an expert; pass --overwrite to replace it");
    if (fs::exists(out) && !fs::is_directory(out)) throw Error(out.string() + ": exists and is not a folder");
}

LoraSettings loraSettings(const CommandContext& ctx, const fs::path& model_dir) {
    LoraSettings s;
    s.r = ctx.integer("rank", 1);
    s.lora_alpha = number(ctx, "alpha", 0);
    s.use_rslora = ctx.parser.isSet("rslora");
    for (const QString& t : ctx.parser.value("targets").split(',', Qt::SkipEmptyParts))
        s.target_modules.push_back(t.trimmed().toStdString());
    s.base_model_name_or_path = fs::weakly_canonical(fs::absolute(model_dir)).string();
    return s;
}

// Divergence keeps the weights before the failing update; they are saved only when the user asked.
template <typename Trainer, typename Save>
[[noreturn]] void reportDivergence(const TrainingDiverged& e, const CommandContext& ctx,
                                   const Trainer& trainer, Save save) {
    if (!ctx.parser.isSet("save-last-good")) throw e;
    save(trainer.lastGood());
    throw Error(std::string(e.what()) + " (the weights before that step were saved)");
}

// With --db, the run and its loss curve go to that results database (the workspace's workbench.sqlite).
void recordIfAsked(const CommandContext& ctx, const std::string& kind, const std::string& who,
                   const std::string& curve_kind, const TrainingOptions& o,
                   const std::vector<double>& curve) {
    if (!ctx.parser.isSet("db")) return;
    ResultsStore store(ctx.value("db"));
    const nlohmann::json settings = {{"expert", who},
                                     {"data", ctx.value("data")},
                                     {"steps", o.steps},
                                     {"learning_rate", o.learning_rate},
                                     {"batch_size", o.batch_size},
                                     {"seed", o.seed}};
    const int64_t run =
        recordTrainingRun(store, kind, who, curve_kind, settings.dump(), curve, PHATGOOSE_VERSION);
    ctx.out << "loss curve recorded as run " << run << " in " << store.file().string() << "\n";
}

void runTrainExpert(CommandContext& ctx) {
    setComputeThreads(int(ctx.integer("threads", 0)));
    const fs::path model_dir = required(ctx, "model", "DIR");
    const fs::path data_path = required(ctx, "data", "FILE");
    const fs::path out = required(ctx, "out", "EXPERT_DIR");
    refuseExistingExpert(out, ctx.parser.isSet("overwrite"));
    ExpertTrainingSettings settings;
    settings.name = fs::absolute(out).lexically_normal().filename().string();
    if (settings.name.empty())
        settings.name = fs::absolute(out).lexically_normal().parent_path().filename().string();
    settings.lora = loraSettings(ctx, model_dir);
    settings.training = trainingOptions(ctx, TrainingOptions{});
    settings.training.valid_every = ctx.integer("valid-every", 1);
    validate(settings.training);

    const bool skip_bad = ctx.parser.isSet("skip-bad");
    const Dataset train = loadJsonl(data_path, skip_bad);
    std::optional<Dataset> valid;
    if (ctx.parser.isSet("valid")) valid = loadJsonl(ctx.value("valid"), skip_bad);
    PretrainedT5 t5 = loadPretrainedT5(model_dir);

    InterruptGuard interrupt;
    ExpertTrainer trainer(*t5.model, *t5.tokenizer, settings);
    LoraExpert expert;
    try {
        expert = trainer.train(train, valid ? &*valid : nullptr,
                               {progressPrinter(ctx.err, "train-expert"), interrupt.flag()});
    } catch (const TrainingDiverged& e) {
        reportDivergence(e, ctx, trainer, [&](const LoraExpert& last) { saveLoraExpert(last, out); });
    }
    saveLoraExpert(expert, out);
    const TrainingRecord& r = *expert.training_record;
    ctx.out << "trained expert '" << expert.name << "': " << expert.modules.size() << " modules, rank "
            << expert.settings.r << ", " << r.steps << " steps on " << train.examples.size()
            << " examples, final loss " << r.final_loss;
    if (valid) ctx.out << ", best valid loss " << r.best_valid_loss;
    ctx.out << " -> " << out.string() << "\n";
    recordIfAsked(ctx, "train-expert", expert.name, "expert", settings.training, r.loss_curve);
}

void runTrainGate(CommandContext& ctx) {
    setComputeThreads(int(ctx.integer("threads", 0)));
    const fs::path model_dir = required(ctx, "model", "DIR");
    const fs::path expert_dir = required(ctx, "expert", "EXPERT_DIR");
    const fs::path data_path = required(ctx, "data", "FILE");
    const TrainingOptions options = trainingOptions(ctx, gateTrainingDefaults());
    validate(options);
    const Dataset data = loadJsonl(data_path, ctx.parser.isSet("skip-bad"));
    PretrainedT5 t5 = loadPretrainedT5(model_dir);
    const LoraExpert expert = loadLoraExpert(expert_dir, t5.config);
    if (expert.hasGate() && !ctx.parser.isSet("overwrite"))
        throw Error(expert_dir.string() + ": the expert already has a gate; pass --overwrite to retrain it");

    InterruptGuard interrupt;
    GateTrainer trainer(*t5.model, *t5.tokenizer, options);
    LoraExpert gated;
    try {
        gated = trainer.train(expert, data, {progressPrinter(ctx.err, "train-gate"), interrupt.flag()});
    } catch (const TrainingDiverged& e) {
        reportDivergence(e, ctx, trainer, [&](const LoraExpert& last) { saveGate(last, expert_dir); });
    }
    saveGate(gated, expert_dir);
    const GateRecord& r = *gated.gate_record;
    ctx.out << "trained the gate of '" << gated.name << "': " << gated.modules.size() << " modules, "
            << r.steps << " steps, loss " << r.loss_curve.front() << " -> " << r.final_loss << " -> "
            << expert_dir.string() << "\n";
    recordIfAsked(ctx, "train-gate", gated.name, "gate", options, r.loss_curve);
}

void declareTrainingFlags(QCommandLineParser& p, const TrainingOptions& d) {
    auto text = [](double v) { return QString::number(v); };
    p.addOption({"model", "Base model folder in Hugging Face layout.", "DIR"});
    p.addOption({"data", "Training examples, JSON Lines.", "FILE"});
    p.addOption(
        {"steps", "Optimizer updates (default " + text(double(d.steps)) + ").", "N", text(double(d.steps))});
    p.addOption(
        {"lr", "Peak learning rate (default " + text(d.learning_rate) + ").", "LR", text(d.learning_rate)});
    p.addOption({"batch", "Examples per forward pass (default 8).", "N", "8"});
    p.addOption({"accum", "Forward passes per update (default 1).", "N", "1"});
    p.addOption({"seed", "Random seed (default 0).", "N", "0"});
    p.addOption({"warmup", "Warm-up fraction of the steps (default 0.06).", "F", "0.06"});
    p.addOption({"schedule", "After warm-up: constant or linear decay (default constant).", "constant|linear",
                 "constant"});
    p.addOption({"clip", "Gradient norm clipping; 0 = off (default 1.0).", "NORM", "1.0"});
    p.addOption({"weight-decay", "AdamW weight decay (default 0).", "WD", "0"});
    p.addOption({"max-input-tokens", "Truncate inputs to N tokens, eos kept (default 256).", "N", "256"});
    p.addOption({"max-target-tokens", "Truncate targets to N tokens, eos kept (default 64).", "N", "64"});
    p.addOption({"skip-bad", "Skip malformed dataset lines instead of failing."});
    p.addOption({"db", "Also record the run and its loss curve in this results database.", "FILE"});
    p.addOption({"save-last-good", "If training diverges, save the weights from before the failing step."});
    p.addOption({"threads", "Compute threads (0 = default).", "N", "0"});
}

}  // namespace

std::vector<Command> trainingCommands() {
    return {
        {"train-expert", "Train a LoRA expert on a JSON Lines dataset and save it as a PEFT adapter folder.",
         [](QCommandLineParser& p) {
             declareTrainingFlags(p, TrainingOptions{});
             p.addOption({"valid", "Validation examples; the best-validation weights are kept.", "FILE"});
             p.addOption({"valid-every", "Steps between validation passes (default 50).", "N", "50"});
             p.addOption({"out", "Expert folder to write.", "EXPERT_DIR"});
             p.addOption({"overwrite", "Replace an expert already in --out."});
             p.addOption({"rank", "LoRA rank r (default 16).", "R", "16"});
             p.addOption({"alpha", "LoRA alpha; scale = alpha / r (default 1).", "ALPHA", "1"});
             p.addOption({"rslora", "Scale by alpha / sqrt(r) (rsLoRA)."});
             p.addOption({"targets", "Linear layers to adapt, e.g. q,k,v,o,wi,wo (default: all).", "LIST"});
         },
         runTrainExpert},
        {"train-gate", "Train the PHATGOOSE gate of an expert on its training data and save it beside it.",
         [](QCommandLineParser& p) {
             declareTrainingFlags(p, gateTrainingDefaults());
             p.addOption({"expert", "Expert folder (PEFT adapter) whose gate to train.", "EXPERT_DIR"});
             p.addOption({"overwrite", "Retrain a gate the expert already has."});
         },
         runTrainGate},
    };
}

}  // namespace phatgoose
