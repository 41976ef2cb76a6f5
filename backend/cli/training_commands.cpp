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
#include "data/dataset.h"
#include "error.h"
#include "experts/lora_expert.h"
#include "model/compute_policy.h"
#include "model/t5_loader.h"
#include "store/workspace.h"
#include "training/expert_trainer.h"
#include "training/training_session.h"

namespace phatgoose {
namespace {

namespace fs = std::filesystem;

LearningRateSchedule schedule(const CommandContext& ctx) {
    const std::string s = ctx.value("schedule");
    if (s == "constant") return LearningRateSchedule::Constant;
    if (s == "linear") return LearningRateSchedule::LinearDecay;
    throw UsageError("--schedule must be 'constant' or 'linear', got '" + s + "'");
}

// The --preset's settings (of the run kind), with every option given on the command line over them.
TrainingOptions trainingOptions(const CommandContext& ctx, const std::string& kind) {
    TrainingOptions o;
    try {
        o = trainingPreset(kind, ctx.value("preset")).options;
    } catch (const Error& e) {
        throw UsageError(std::string("--preset: ") + e.what());
    }
    auto given = [&](const char* name) { return ctx.parser.isSet(name); };
    if (given("steps")) o.steps = ctx.integer("steps", 1);
    if (given("lr")) o.learning_rate = ctx.number("lr", 0);
    if (given("batch")) o.batch_size = ctx.integer("batch", 1);
    if (given("accum")) o.accumulation_steps = ctx.integer("accum", 1);
    if (given("seed")) o.seed = uint64_t(ctx.integer("seed", 0));
    if (given("warmup")) o.warmup_fraction = ctx.number("warmup", 0);
    if (given("schedule")) o.schedule = schedule(ctx);
    if (given("clip")) o.max_grad_norm = ctx.number("clip", 0);
    if (given("weight-decay")) o.weight_decay = ctx.number("weight-decay", 0);
    if (given("max-input-tokens")) o.max_input_tokens = ctx.integer("max-input-tokens", 2);
    if (given("max-target-tokens")) o.max_target_tokens = ctx.integer("max-target-tokens", 2);
    if (given("dropout")) o.dropout = ctx.number("dropout", 0);
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
    s.lora_alpha = ctx.number("alpha", 0);
    s.use_rslora = ctx.parser.isSet("rslora");
    for (const QString& t : ctx.parser.value("targets").split(',', Qt::SkipEmptyParts))
        s.target_modules.push_back(t.trimmed().toStdString());
    s.base_model_name_or_path = fs::weakly_canonical(fs::absolute(model_dir)).string();
    return s;
}

// Divergence keeps the weights before the failing update; they are saved only when the user asked.
template <typename Save>
[[noreturn]] void reportDivergence(const TrainingDiverged& e, const CommandContext& ctx,
                                   const LoraExpert& last, Save save) {
    if (!ctx.parser.isSet("save-last-good")) throw e;
    save(last);
    throw Error(std::string(e.what()) + " (the weights before that step were saved)");
}

// With --db, the run and its loss curve go to that results database (the workspace's workbench.sqlite).
std::optional<fs::path> runDatabase(const CommandContext& ctx) {
    if (!ctx.parser.isSet("db")) return std::nullopt;
    return fs::path(ctx.value("db"));
}

void reportRecorded(const CommandContext& ctx, const RecordedTrainingRun& run) {
    if (auto db = run.database())
        ctx.out << "loss curve recorded as run " << run.id() << " in " << db->string() << "\n";
}

RunOrigin cliOrigin(const fs::path& model_dir) {
    return {.model_dir = model_dir.string(), .program = "cli"};
}

void runTrainExpert(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const fs::path model_dir = ctx.required("model", "DIR");
    const fs::path data_path = ctx.required("data", "FILE");
    const fs::path out = ctx.required("out", "EXPERT_DIR");
    refuseExistingExpert(out, ctx.parser.isSet("overwrite"));
    ExpertTrainingSettings settings;
    settings.name = fs::absolute(out).lexically_normal().filename().string();
    if (settings.name.empty())
        settings.name = fs::absolute(out).lexically_normal().parent_path().filename().string();
    settings.lora = loraSettings(ctx, model_dir);
    settings.training = trainingOptions(ctx, kTrainExpertRun);
    settings.training.valid_every = ctx.integer("valid-every", 1);
    validate(settings.training);

    const bool skip_bad = ctx.parser.isSet("skip-bad");
    const Dataset train = loadJsonl(data_path, skip_bad);
    std::optional<Dataset> valid;
    if (ctx.parser.isSet("valid")) valid = loadJsonl(ctx.value("valid"), skip_bad);
    PretrainedT5 t5 = loadPretrainedT5(model_dir);

    InterruptGuard interrupt;
    RecordedTrainingRun run(runDatabase(ctx), kTrainExpertRun,
                            trainingRunSettings(settings.name, data_path, settings.training,
                                                cliOrigin(model_dir), &settings.lora));
    LoraExpert expert, last;
    try {
        expert =
            trainExpertRecorded(*t5.model, *t5.tokenizer, settings, train, valid ? &*valid : nullptr,
                                {progressPrinter(ctx.err, kTrainExpertRun), interrupt.flag()}, run, &last);
    } catch (const TrainingDiverged& e) {
        reportDivergence(e, ctx, last, [&](const LoraExpert& weights) { saveLoraExpert(weights, out); });
    }
    saveLoraExpert(expert, out);
    const TrainingRecord& r = *expert.training_record;
    ctx.out << "trained expert '" << expert.name << "': " << expert.modules.size() << " modules, rank "
            << expert.settings.r << ", " << r.steps << " steps on " << train.examples.size()
            << " examples, final loss " << r.final_loss;
    if (valid) ctx.out << ", best valid loss " << r.best_valid_loss;
    ctx.out << " -> " << out.string() << "\n";
    reportRecorded(ctx, run);
}

// The gate's data: --data, else the expert's own training data (its record, else the task of the workspace
// the expert folder belongs to), found as the workbench finds it.
fs::path gateData(const CommandContext& ctx, const LoraExpert& expert) {
    if (ctx.parser.isSet("data")) return ctx.value("data");
    const fs::path workspace_root = fs::absolute(expert.dir).lexically_normal().parent_path().parent_path();
    std::optional<Workspace> workspace;
    if (fs::is_regular_file(workspace_root / "workspace.json")) workspace = openWorkspace(workspace_root);
    return gateTrainingData(expert, workspace ? &*workspace : nullptr);
}

void runTrainGate(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const fs::path model_dir = ctx.required("model", "DIR");
    const fs::path expert_dir = ctx.required("expert", "EXPERT_DIR");
    const TrainingOptions options = trainingOptions(ctx, kTrainGateRun);
    validate(options);
    PretrainedT5 t5 = loadPretrainedT5(model_dir);
    const LoraExpert expert = loadLoraExpert(expert_dir, t5.config);
    if (expert.hasGate() && !ctx.parser.isSet("overwrite"))
        throw Error(expert_dir.string() + ": the expert already has a gate; pass --overwrite to retrain it");
    const fs::path data_path = gateData(ctx, expert);
    const Dataset data = loadJsonl(data_path, ctx.parser.isSet("skip-bad"));

    InterruptGuard interrupt;
    RecordedTrainingRun run(runDatabase(ctx), kTrainGateRun,
                            trainingRunSettings(expert.name, data_path, options, cliOrigin(model_dir)));
    LoraExpert gated, last;
    try {
        gated = trainGateRecorded(*t5.model, *t5.tokenizer, options, expert, data,
                                  {progressPrinter(ctx.err, kTrainGateRun), interrupt.flag()}, run, &last);
    } catch (const TrainingDiverged& e) {
        reportDivergence(e, ctx, last, [&](const LoraExpert& weights) { saveGate(weights, expert_dir); });
    }
    saveGate(gated, expert_dir);
    const GateRecord& r = *gated.gate_record;
    ctx.out << "trained the gate of '" << gated.name << "': " << gated.modules.size() << " modules, "
            << r.steps << " steps, loss " << r.loss_curve.front() << " -> " << r.final_loss << " -> "
            << expert_dir.string() << "\n";
    reportRecorded(ctx, run);
}

// Every default comes from the run kind's first preset: the help says what runs. Options given on the
// command line override the chosen --preset, so they carry no default value of their own.
void declareTrainingFlags(QCommandLineParser& p, const std::string& kind, const char* data_help) {
    const std::vector<TrainingPreset>& presets = trainingPresets(kind);
    const TrainingOptions& d = presets.front().options;
    auto text = [](double v) { return QString::number(v); };
    auto option = [&](const QString& name, const QString& help, const QString& value_name, double value) {
        p.addOption({name, help + " (" + QString::fromStdString(presets.front().name) + ": " + text(value) + ").",
                     value_name});
    };
    QString preset_help = "Start from these settings; the options below override them:";
    for (const TrainingPreset& preset : presets)
        preset_help += " " + QString::fromStdString(preset.name) + " = " + QString::fromStdString(preset.label) + ";";
    preset_help += " default " + QString::fromStdString(presets.front().name) + ".";
    p.addOption({"preset", preset_help, "NAME", QString::fromStdString(presets.front().name)});
    p.addOption({"model", "Base model folder in Hugging Face layout.", "DIR"});
    p.addOption({"data", data_help, "FILE"});
    option("steps", "Optimizer updates", "N", double(d.steps));
    option("lr", "Peak learning rate", "LR", d.learning_rate);
    option("batch", "Examples per forward pass", "N", double(d.batch_size));
    option("accum", "Forward passes per update", "N", double(d.accumulation_steps));
    option("seed", "Random seed", "N", double(d.seed));
    option("warmup", "Warm-up fraction of the steps", "F", d.warmup_fraction);
    const QString schedule = d.schedule == LearningRateSchedule::LinearDecay ? "linear" : "constant";
    p.addOption({"schedule", "After warm-up: constant or linear decay (" +
                                 QString::fromStdString(presets.front().name) + ": " + schedule + ").",
                 "constant|linear"});
    option("clip", "Gradient norm clipping; 0 = off", "NORM", d.max_grad_norm);
    option("weight-decay", "AdamW weight decay", "WD", d.weight_decay);
    option("max-input-tokens", "Truncate inputs to N tokens, eos kept", "N", double(d.max_input_tokens));
    option("max-target-tokens", "Truncate targets to N tokens, eos kept", "N", double(d.max_target_tokens));
    p.addOption({"dropout",
                 "Dropout while training (default: the model's dropout_rate from config.json; 0 = off).", "P"});
    p.addOption({"skip-bad", "Skip malformed dataset lines instead of failing."});
    p.addOption({"db", "Also record the run and its loss curve in this results database.", "FILE"});
    p.addOption({"save-last-good", "If training diverges, save the weights from before the failing step."});
    p.addOption(threadsOption());
}

}  // namespace

std::vector<Command> trainingCommands() {
    return {
        {kTrainExpertRun, "Train a LoRA expert on a JSON Lines dataset and save it as a PEFT adapter folder.",
         [](QCommandLineParser& p) {
             const TrainingOptions d;
             declareTrainingFlags(p, kTrainExpertRun, "Training examples, JSON Lines.");
             p.addOption({"valid", "Validation examples; the best-validation weights are kept.", "FILE"});
             const QString every = QString::number(d.valid_every);
             p.addOption(
                 {"valid-every", "Steps between validation passes (default " + every + ").", "N", every});
             p.addOption({"out", "Expert folder to write.", "EXPERT_DIR"});
             p.addOption({"overwrite", "Replace an expert already in --out."});
             const LoraSettings lora;
             const QString rank = QString::number(lora.r), alpha = QString::number(lora.lora_alpha);
             p.addOption({"rank", "LoRA rank r (default " + rank + ").", "R", rank});
             p.addOption({"alpha", "LoRA alpha; scale = alpha / r (default " + alpha + ").", "ALPHA", alpha});
             p.addOption({"rslora", "Scale by alpha / sqrt(r) (rsLoRA)."});
             p.addOption({"targets", "Linear layers to adapt, e.g. q,k,v,o,wi,wo (default: all).", "LIST"});
         },
         runTrainExpert},
        {kTrainGateRun, "Train the PHATGOOSE gate of an expert on its training data and save it beside it.",
         [](QCommandLineParser& p) {
             declareTrainingFlags(
                 p, kTrainGateRun,
                 "Training examples, JSON Lines (default: the expert's own training data, as "
                 "its training record or its workspace task names it).");
             p.addOption({"expert", "Expert folder (PEFT adapter) whose gate to train.", "EXPERT_DIR"});
             p.addOption({"overwrite", "Retrain a gate the expert already has."});
         },
         runTrainGate},
    };
}

}  // namespace phatgoose
