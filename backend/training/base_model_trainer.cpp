#include "training/base_model_trainer.h"

#include "training/trainable_lora.h"

namespace phatgoose {

BaseModelTrainer::BaseModelTrainer(T5ModelImpl& model, const Tokenizer& tokenizer, TrainingOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)) {
    validate(options_);
}

LoopOutcome BaseModelTrainer::train(const Dataset& train, const TrainingControl& control) {
    const std::vector<TrainingPair> pairs = tokenizeForTraining(train, tokenizer_, model_.config(), options_);
    FrozenModel flags(model_);  // restores every flag afterwards; all are switched on just below
    std::vector<torch::Tensor> parameters = model_.parameters();
    for (torch::Tensor& p : parameters) p.set_requires_grad(true);
    LoopOutcome outcome;
    TrainingLoop loop(model_, options_, parameters);
    loop.run(pairs, {}, control, outcome);
    return outcome;
}

}  // namespace phatgoose
