#include "training/training_options.h"

#include <cmath>

namespace phatgoose {

namespace {

TrainingOptions paperOptions(int64_t steps) {
    TrainingOptions o;
    o.steps = steps;
    o.learning_rate = 5e-3;
    o.weight_decay = 0.0;
    o.warmup_fraction = 0.06;
    o.schedule = LearningRateSchedule::Constant;
    o.max_grad_norm = 1.0;
    o.batch_size = 32;
    o.accumulation_steps = 32;
    o.max_input_tokens = 512;
    o.max_target_tokens = 512;
    return o;
}

std::vector<TrainingPreset> gatePresets() {
    TrainingOptions quick;
    quick.steps = 100;
    quick.learning_rate = 5e-3;
    quick.warmup_fraction = 0.06;
    quick.max_grad_norm = 1.0;
    return {{"quick", "Quick (batch 8, 100 steps, lr 5e-3, warm-up 6 %)", quick},
            {"paper", "Paper (batch 32 x 32 accumulation, 100 steps, lr 5e-3, warm-up 6 %)", paperOptions(100)}};
}

std::vector<TrainingPreset> expertPresets() {
    return {{"quick", "Quick (batch 8, 1000 steps, lr 5e-3, warm-up 6 %)", TrainingOptions{}},
            {"paper", "Paper (batch 32 x 32 accumulation, 1000 steps, lr 5e-3, warm-up 6 %)",
             paperOptions(1000)}};
}

}  // namespace

const std::vector<TrainingPreset>& trainingPresets(const std::string& kind) {
    static const std::vector<TrainingPreset> gate = gatePresets(), expert = expertPresets();
    if (kind == kTrainGateRun) return gate;
    if (kind == kTrainExpertRun) return expert;
    throw Error("no training presets for run kind '" + kind + "'");
}

const TrainingPreset& trainingPreset(const std::string& kind, const std::string& name) {
    std::string known;
    for (const TrainingPreset& p : trainingPresets(kind)) {
        if (p.name == name) return p;
        known += (known.empty() ? "" : ", ") + p.name;
    }
    throw Error("unknown training preset '" + name + "' (known: " + known + ")");
}

TrainingOptions gateTrainingDefaults() {
    return trainingPresets(kTrainGateRun).front().options;
}

void validate(const TrainingOptions& o) {
    auto require = [](bool ok, const std::string& what) {
        if (!ok) throw Error("training options: " + what);
    };
    require(o.steps >= 1, "steps must be at least 1, got " + std::to_string(o.steps));
    require(o.learning_rate > 0 && std::isfinite(o.learning_rate), "the learning rate must be positive");
    require(o.warmup_fraction >= 0 && o.warmup_fraction < 1, "the warm-up fraction must be in [0, 1)");
    require(o.max_grad_norm >= 0 && std::isfinite(o.max_grad_norm), "the clipping norm must be >= 0");
    require(o.batch_size >= 1, "the batch size must be at least 1, got " + std::to_string(o.batch_size));
    require(o.accumulation_steps >= 1, "accumulation steps must be at least 1");
    require(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "the weight decay must be >= 0");
    // One real token plus eos: less cannot hold any text.
    require(o.max_input_tokens >= 2, "max input tokens must be at least 2");
    require(o.max_target_tokens >= 2, "max target tokens must be at least 2");
    require(o.valid_every >= 1, "validate-every must be at least 1 step");
    require(o.dropout < 1 && std::isfinite(o.dropout), "dropout must be below 1 (negative: the model's rate)");
}

int64_t warmupSteps(const TrainingOptions& o) {
    return std::min<int64_t>(o.steps, int64_t(std::ceil(o.warmup_fraction * double(o.steps) - 1e-9)));
}

double learningRateAt(const TrainingOptions& o, int64_t step) {
    const int64_t warmup = warmupSteps(o);
    if (step <= warmup) return o.learning_rate * double(step) / double(warmup);
    if (o.schedule == LearningRateSchedule::Constant) return o.learning_rate;
    return o.learning_rate * double(o.steps - step + 1) / double(o.steps - warmup);
}

}  // namespace phatgoose
