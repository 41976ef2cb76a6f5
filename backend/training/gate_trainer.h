#pragma once
// PHATGOOSE gate training (docs/ARCHITECTURE.md, "PHATGOOSE gate training"): one zero-initialised gate vector
// per LoRA module of a trained expert, everything else frozen, trained with the LM loss on the expert's own
// training data.
#include "data/dataset.h"
#include "experts/lora_expert.h"
#include "model/t5_model.h"
#include "tokenizer/tokenizer.h"
#include "training/training_loop.h"
#include "training/training_options.h"

namespace phatgoose {

class GateTrainer {
public:
    // The model is borrowed as by ExpertTrainer and left clean in the same way.
    GateTrainer(T5ModelImpl& model, const Tokenizer& tokenizer,
                TrainingOptions options = gateTrainingDefaults());

    // Returns a copy of `expert` with a trained gate on every module and its GateRecord; the expert's A and
    // B are shared, never modified, and get no gradient. An existing gate is replaced (training restarts
    // from zeros). Writes nothing. Throws TrainingCancelled or TrainingDiverged; lastGood() then holds the
    // gates before the update that was not applied.
    LoraExpert train(const LoraExpert& expert, const Dataset& data, const TrainingControl& control = {});

    LoraExpert lastGood() const;

private:
    T5ModelImpl& model_;
    const Tokenizer& tokenizer_;
    TrainingOptions options_;
    LoraExpert working_;   // the gates require grad while training
    LoopOutcome outcome_;  // the run so far
};

}  // namespace phatgoose
