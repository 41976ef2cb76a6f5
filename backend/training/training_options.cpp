#include "training/training_options.h"

#include <cmath>

namespace phatgoose {

TrainingOptions gateTrainingDefaults() {
    TrainingOptions o;
    o.steps = 100;
    o.learning_rate = 5e-3;
    o.warmup_fraction = 0.06;
    o.max_grad_norm = 1.0;
    return o;
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
