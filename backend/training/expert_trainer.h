#pragma once
// Training a fresh LoRA expert on one task's dataset with the ordinary LM loss (docs/ARCHITECTURE.md, "LoRA
// experts").
#include <string>

#include "data/dataset.h"
#include "experts/lora_expert.h"
#include "model/t5_model.h"
#include "tokenizer/tokenizer.h"
#include "training/training_loop.h"
#include "training/training_options.h"

namespace phatgoose {

struct ExpertTrainingSettings {
    std::string name = "expert";
    LoraSettings lora;  // empty target_modules (and no regex): every linear layer, as PHATGOOSE does
    TrainingOptions training;
};

class ExpertTrainer {
public:
    // The model is borrowed for the trainer's lifetime; it is left without adapters and with its
    // parameters' requires_grad flags as they were, whether train() returns or throws.
    ExpertTrainer(T5ModelImpl& model, const Tokenizer& tokenizer, ExpertTrainingSettings settings);

    // Trains a new expert (initLoraExpert with the training seed). With `valid`, returns the weights of the
    // best validation pass, else those after the last step; its TrainingRecord is filled. Writes nothing.
    // Throws TrainingCancelled or TrainingDiverged; lastGood() then holds the weights before the update
    // that was not applied.
    LoraExpert train(const Dataset& train, const Dataset* valid = nullptr,
                     const TrainingControl& control = {});

    // A detached copy of the current weights (with the record so far).
    LoraExpert lastGood() const;

private:
    T5ModelImpl& model_;
    const Tokenizer& tokenizer_;
    ExpertTrainingSettings settings_;
    LoraExpert working_;   // A and B require grad while training
    LoopOutcome outcome_;  // the run so far
};

// Detached, contiguous copies of every module's tensors: what an optimizer's later updates cannot reach.
LoraExpert snapshotExpert(const LoraExpert& expert);

}  // namespace phatgoose
