#include "training/expert_trainer.h"

#include <map>

#include "training/trainable_lora.h"
#include "training/training_loop.h"

namespace phatgoose {
namespace {

// The dataset's task, or its tasks joined by commas when it mixes several (a multitask expert).
std::string taskOf(const Dataset& data) {
    std::map<std::string, int> tasks;
    for (const Example& ex : data.examples) ++tasks[ex.task];
    std::string joined;
    for (const auto& entry : tasks) joined += (joined.empty() ? "" : ",") + entry.first;
    return joined;
}

}  // namespace

LoraExpert snapshotExpert(const LoraExpert& expert) {
    LoraExpert copy = expert;
    for (auto& entry : copy.modules) {
        LoraModule& m = entry.second;
        m.A = m.A.detach().clone();
        m.B = m.B.detach().clone();
        if (m.gate.defined()) m.gate = m.gate.detach().clone();
    }
    return copy;
}

ExpertTrainer::ExpertTrainer(T5ModelImpl& model, const Tokenizer& tokenizer, ExpertTrainingSettings settings)
    : model_(model), tokenizer_(tokenizer), settings_(std::move(settings)) {
    validate(settings_.training);
    if (settings_.lora.target_modules.empty() && !settings_.lora.target_regex)
        settings_.lora.target_modules = LoraSettings::allLinearLeaves(model_.config());
}

LoraExpert ExpertTrainer::train(const Dataset& train, const Dataset* valid, const TrainingControl& control) {
    const TrainingOptions& o = settings_.training;
    const std::vector<TrainingPair> train_pairs = tokenizeForTraining(train, tokenizer_, model_.config(), o);
    const std::vector<TrainingPair> valid_pairs =
        valid ? tokenizeForTraining(*valid, tokenizer_, model_.config(), o) : std::vector<TrainingPair>{};

    working_ = initLoraExpert(settings_.name, settings_.lora, model_.config(), o.seed);
    working_.training_record = TrainingRecord{};
    working_.training_record->dataset = train.path.string();
    working_.training_record->task = taskOf(train);
    outcome_ = LoopOutcome{};
    std::vector<torch::Tensor> parameters;
    for (auto& entry : working_.modules) {
        LoraModule& m = entry.second;
        // Own leaf tensors, so that nothing outside the trainer sees them change mid-run.
        m.A = m.A.detach().to(torch::kFloat).clone().set_requires_grad(true);
        m.B = m.B.detach().to(torch::kFloat).clone().set_requires_grad(true);
        m.gate = torch::Tensor();
        parameters.push_back(m.A);
        parameters.push_back(m.B);
    }

    FrozenModel frozen(model_);
    AttachedExpert attached(model_, working_, GateUse::Ignore);
    LoraExpert best;
    TrainingLoop loop(model_, o, parameters);
    loop.run(train_pairs, valid_pairs, control, outcome_, [&] { best = lastGood(); });
    return valid_pairs.empty() ? lastGood() : best;
}

LoraExpert ExpertTrainer::lastGood() const {
    LoraExpert copy = snapshotExpert(working_);
    if (copy.training_record) {
        TrainingRecord& r = *copy.training_record;
        r.steps = outcome_.steps;
        r.final_loss = outcome_.final_loss;
        r.best_valid_loss = outcome_.best_valid_loss.value_or(0.0);
        r.loss_curve = outcome_.loss_curve;
    }
    return copy;
}

}  // namespace phatgoose
