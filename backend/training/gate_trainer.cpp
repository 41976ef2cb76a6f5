#include "training/gate_trainer.h"

#include "training/expert_trainer.h"
#include "training/trainable_lora.h"
#include "training/training_loop.h"

namespace phatgoose {

GateTrainer::GateTrainer(T5ModelImpl& model, const Tokenizer& tokenizer, TrainingOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)) {
    validate(options_);
}

LoraExpert GateTrainer::train(const LoraExpert& expert, const Dataset& data, const TrainingControl& control) {
    const std::vector<TrainingPair> pairs = tokenizeForTraining(data, tokenizer_, model_.config(), options_);
    working_ = expert;
    outcome_ = LoopOutcome{};
    working_.gate_record = GateRecord{};
    working_.gate_record->learning_rate = options_.learning_rate;
    working_.gate_record->batch_size = options_.batch_size * options_.accumulation_steps;
    working_.gate_record->seed = options_.seed;
    working_.gate_record->dataset = data.path.string();
    std::vector<torch::Tensor> gates;
    for (auto& entry : working_.modules) {
        LoraModule& m = entry.second;
        // detach(): the expert's weights stay shared but out of autograd's reach, so backward computes
        // activation gradients only, never a weight gradient for A or B.
        m.A = m.A.detach();
        m.B = m.B.detach();
        // Zeros: every gate starts at sigmoid(0) = 0.5 (docs/ARCHITECTURE.md, "PHATGOOSE gate training").
        // A column, so the forward pass needs no reshape; lastGood() hands out [d_in] vectors.
        m.gate = torch::zeros({m.A.size(1), 1}, torch::kFloat).set_requires_grad(true);  // [d_in, 1]
        gates.push_back(m.gate);
    }

    FrozenModel frozen(model_);
    AttachedExpert attached(model_, working_, GateUse::Apply);
    TrainingLoop loop(model_, options_, gates);
    loop.run(pairs, {}, control, outcome_);
    return lastGood();
}

LoraExpert GateTrainer::lastGood() const {
    LoraExpert copy = working_;
    for (auto& entry : copy.modules)
        if (entry.second.gate.defined()) entry.second.gate = entry.second.gate.detach().reshape({-1}).clone();
    if (copy.gate_record) {
        copy.gate_record->steps = outcome_.steps;
        copy.gate_record->final_loss = outcome_.final_loss;
        copy.gate_record->loss_curve = outcome_.loss_curve;
    }
    return copy;
}

}  // namespace phatgoose
