#pragma once
// The optimisation loop that the expert and gate trainers share: tokenized examples, shuffled batches,
// the LM loss under teacher forcing, AdamW with warm-up, clipping, accumulation, validation, progress,
// cancellation and the divergence check. The trainers differ only in what they attach and train.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "model/t5_model.h"
#include "tokenizer/tokenizer.h"
#include "training/training_options.h"

namespace phatgoose {

class ExampleOrder;  // the shuffled stream of example indices, private to training_loop.cpp

struct TrainingPair {
    std::vector<int64_t> input;   // ends with eos
    std::vector<int64_t> target;  // ends with eos; at least one token before it
};

// Tokenizes every example, truncating input and target to the options' limits while keeping eos. A
// target that tokenizes to nothing is an error naming the file and line.
std::vector<TrainingPair> tokenizeForTraining(const Dataset& dataset, const Tokenizer& tokenizer,
                                              const T5Config& config, const TrainingOptions& options);

// Mean token cross-entropy of the model (with whatever adapters are attached) over `pairs`, in batches of
// `batch_size`, without building a graph.
double meanLoss(T5ModelImpl& model, const std::vector<TrainingPair>& pairs, int64_t batch_size);

struct LoopOutcome {
    int64_t steps = 0;
    double final_loss = 0.0;         // the last update's training loss
    std::vector<double> loss_curve;  // one training loss per update
    std::optional<double> best_valid_loss;
};

class TrainingLoop {
public:
    // `parameters` are the only tensors updated; they must require grad, and nothing else in the model
    // may (FrozenModel).
    TrainingLoop(T5ModelImpl& model, const TrainingOptions& options, std::vector<torch::Tensor> parameters);

    // Runs options.steps updates on `train`, recording into `outcome` as it goes (so a caller still has
    // the curve after an exception). With a non-empty `valid`, validates every valid_every steps and at the
    // last step and calls `on_new_best` after each pass that beats the best so far. Throws
    // TrainingCancelled or TrainingDiverged before applying the update concerned, so the parameters then
    // hold the state after the last completed update.
    void run(const std::vector<TrainingPair>& train, const std::vector<TrainingPair>& valid,
             const TrainingControl& control, LoopOutcome& outcome,
             const std::function<void()>& on_new_best = {});

private:
    double update(int64_t step, const std::vector<TrainingPair>& train, ExampleOrder& order, int64_t& tokens);

    T5ModelImpl& model_;
    TrainingOptions options_;
    std::vector<torch::Tensor> parameters_;
    torch::optim::AdamW optimizer_;
};

}  // namespace phatgoose
