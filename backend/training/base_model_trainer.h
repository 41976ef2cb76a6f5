#pragma once
// Training every weight of a T5 (pre-training the demo's base model): the same loop as the expert and gate
// trainers, with all parameters trainable and updated in place.
#include "data/dataset.h"
#include "model/t5_model.h"
#include "tokenizer/tokenizer.h"
#include "training/training_loop.h"
#include "training/training_options.h"

namespace phatgoose {

class BaseModelTrainer {
public:
    // The model is borrowed and changed in place; its parameters' requires_grad flags are restored after.
    BaseModelTrainer(T5ModelImpl& model, const Tokenizer& tokenizer, TrainingOptions options);

    // Trains on `train`, returns the curve. Throws TrainingCancelled or TrainingDiverged; the model then
    // holds the state after the last completed update.
    LoopOutcome train(const Dataset& train, const TrainingControl& control = {});

private:
    T5ModelImpl& model_;
    const Tokenizer& tokenizer_;
    TrainingOptions options_;
};

}  // namespace phatgoose
