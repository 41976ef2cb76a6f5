#pragma once
// LoRA as a LinearAdapter whose tensors autograd can train: the expert trainer trains A and B, the gate
// trainer trains only the PHATGOOSE gate. The adapter holds the caller's tensors, so an optimizer that
// updates them in place updates what the adapter computes with.
#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

#include "experts/lora_expert.h"
#include "model/t5_model.h"

namespace phatgoose {

class TrainableLora : public LinearAdapter {
public:
    // A: [r, d_in], B: [d_out, r], gate: [d_in], [d_in, 1] (a column saves an autograd node a call when
    // the gate trains) or undefined (no gate). A tensor that does not require grad is taken as frozen
    // and may be copied (transposed); one that does is read on every call.
    TrainableLora(torch::Tensor A, torch::Tensor B, double scale, torch::Tensor gate = {});
    // x: [batch, len, d_in], base: [batch, len, d_out]. Without a gate: base + s * B (A x); with one:
    // base + sigmoid(x . gate) * s * B (A x), the gate weighing every token on its own (docs/ARCHITECTURE.md,
    // "PHATGOOSE gate training").
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) override;

private:
    torch::Tensor A_, B_, gate_;
    torch::Tensor At_, Bt_;  // contiguous transposes of A and B when they are frozen
    torch::Tensor AtGate_;   // [d_in, r + 1]: At_ and the gate side by side, when both are frozen
    double scale_;
};

enum class GateUse { Ignore, Apply };

// Puts one TrainableLora per module of `expert` on the model's linear layers for as long as it lives and
// restores the adapters that were there before on destruction, so the model is left clean even when
// training throws. The expert's tensors are used as they are (not copied).
class AttachedExpert {
public:
    AttachedExpert(T5ModelImpl& model, const LoraExpert& expert, GateUse gate);
    ~AttachedExpert();
    AttachedExpert(const AttachedExpert&) = delete;
    AttachedExpert& operator=(const AttachedExpert&) = delete;

private:
    void restore();
    std::vector<std::pair<T5Linear, std::shared_ptr<LinearAdapter>>> previous_;
};

// Sets requires_grad(false) on every parameter of the model for as long as it lives, then restores each
// parameter's flag: the trainers must never compute a gradient for a base weight.
class FrozenModel {
public:
    explicit FrozenModel(T5ModelImpl& model);
    ~FrozenModel();
    FrozenModel(const FrozenModel&) = delete;
    FrozenModel& operator=(const FrozenModel&) = delete;

private:
    std::vector<std::pair<torch::Tensor, bool>> flags_;
};

}  // namespace phatgoose
