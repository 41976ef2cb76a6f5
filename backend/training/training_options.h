#pragma once
// The settings, progress reports and cancellation shared by the expert and gate trainers. No LibTorch
// here: the GUI's dialogs include this header.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace phatgoose {

enum class LearningRateSchedule {
    Constant,     // warm-up, then the peak rate
    LinearDecay,  // warm-up, then linearly down towards zero at the last step
};

// The one source of training defaults: the CLI's help and the workbench's dialogs read them from here.
// Defaults are PHATGOOSE's expert-training settings (docs/ARCHITECTURE.md, "LoRA experts") except the
// batch, which the paper sets to 1024 and a laptop cannot; gateTrainingDefaults() gives the gate's.
struct TrainingOptions {
    int64_t steps = 1000;  // optimizer updates
    double learning_rate = 5e-3;
    double warmup_fraction = 0.06;
    LearningRateSchedule schedule = LearningRateSchedule::Constant;
    double max_grad_norm = 1.0;      // 0 = no clipping
    int64_t batch_size = 8;          // examples per forward pass
    int64_t accumulation_steps = 1;  // forward passes per update: effective batch = batch_size * this
    uint64_t seed = 0;
    double weight_decay = 0.0;
    int64_t max_input_tokens = 512;   // eos included
    int64_t max_target_tokens = 512;  // eos included
    int64_t valid_every = 50;         // steps between validation passes, when there is a validation set
    // Dropout while training: < 0 takes the model's dropout_rate (config.json), as Hugging Face does.
    // Validation passes and everything after training run without it.
    double dropout = -1.0;
};

// The kinds of run that training is recorded under in the results database.
inline constexpr const char* kTrainGateRun = "train-gate";
inline constexpr const char* kTrainExpertRun = "train-expert";

// A named set of training settings, offered by the CLI (--preset) and the training dialogs.
struct TrainingPreset {
    std::string name;   // as --preset spells it: "paper", "quick"
    std::string label;  // for people, with the settings that matter
    TrainingOptions options;
};

// The presets of a run kind (kTrainGateRun or kTrainExpertRun), the default first:
//   quick: what a laptop finishes in minutes (batch 8, no accumulation);
//   paper: the authors' settings (r-three/phatgoose, colm/experiments/train*.gin): AdamW, lr 5e-3, no weight
//          decay, constant rate after 6 % warm-up, batch 32 x 32 accumulation = 1024 examples per update,
//          100 updates for a gate and 1000 for an expert, inputs and targets cut at 512 tokens.
const std::vector<TrainingPreset>& trainingPresets(const std::string& kind);
// Throws phatgoose::Error naming the known presets of that kind.
const TrainingPreset& trainingPreset(const std::string& kind, const std::string& name);

// PHATGOOSE's gate training (docs/ARCHITECTURE.md, "PHATGOOSE gate training"): the gate kind's first
// preset ("quick": 100 steps, AdamW, lr 5e-3, 6 % warm-up, clipping at 1.0, batch 8).
TrainingOptions gateTrainingDefaults();

// Throws phatgoose::Error naming the first setting out of range.
void validate(const TrainingOptions& options);

// Warm-up steps: ceil(warmup_fraction * steps).
int64_t warmupSteps(const TrainingOptions& options);

// The rate used by update `step` (1-based, 1..steps), with W = warmupSteps and N = steps:
//   step <= W:            lr * step / W
//   step > W, constant:   lr
//   step > W, linear:     lr * (N - step + 1) / (N - W)
// so no update runs at rate zero and the last one runs at lr / (N - W).
double learningRateAt(const TrainingOptions& options, int64_t step);

struct TrainingProgress {
    int64_t step = 0;  // updates done
    int64_t total_steps = 0;
    double loss = 0.0;  // mean token cross-entropy of this update's examples
    double learning_rate = 0.0;
    double tokens_per_s = 0.0;  // input + target tokens per second, averaged since the start
    double eta_s = 0.0;
    std::optional<double> valid_loss;  // set on the steps that ran a validation pass
};

using ProgressCallback = std::function<void(const TrainingProgress&)>;

// How a caller follows and stops a run. The trainer reads `cancel` once per update and, when it is set,
// stops before the next update and throws TrainingCancelled.
struct TrainingControl {
    ProgressCallback progress;
    const std::atomic<bool>* cancel = nullptr;
};

// The run was stopped through TrainingControl::cancel. Nothing is written by the trainers in any case;
// callers save only what a trainer returned.
class TrainingCancelled : public Error {
public:
    explicit TrainingCancelled(int64_t step)
        : Error("training cancelled after " + std::to_string(step) + " steps"), steps_done(step) {}
    int64_t steps_done;
};

// A non-finite loss or gradient: the update that produced it was not applied.
class TrainingDiverged : public Error {
public:
    TrainingDiverged(int64_t step, const std::string& what)
        : Error("training diverged at step " + std::to_string(step) + ": " + what), step(step) {}
    int64_t step;
};

}  // namespace phatgoose
