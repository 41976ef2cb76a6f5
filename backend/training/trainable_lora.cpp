#include "training/trainable_lora.h"

#include "error.h"

namespace phatgoose {

TrainableLora::TrainableLora(torch::Tensor A, torch::Tensor B, double scale, torch::Tensor gate)
    // A library's BF16/F16 experts widen here, for the one expert being trained or applied.
    : A_(A.to(torch::kFloat)), B_(B.to(torch::kFloat)), gate_(std::move(gate)), scale_(scale) {
    // Frozen matrices (gate training) are transposed once here rather than on every call: the tiny
    // models of the demo are bound by the number of autograd nodes, not by FLOPs.
    if (!A_.requires_grad()) At_ = A_.t().contiguous();  // [d_in, r]
    if (!B_.requires_grad()) Bt_ = B_.t().contiguous();  // [r, d_out]
    if (gate_.defined() && gate_.dim() == 1 && !gate_.requires_grad())
        gate_ = gate_.unsqueeze(1);  // [d_in, 1]
    if (gate_.defined() && At_.defined() && !gate_.requires_grad())
        AtGate_ = torch::cat({At_, gate_}, 1).contiguous();  // [d_in, r + 1]
}

torch::Tensor TrainableLora::forward(const torch::Tensor& x, const torch::Tensor& base) {
    const torch::Tensor Bt = Bt_.defined() ? Bt_ : B_.t();
    if (gate_.defined() && At_.defined()) {
        // A frozen (gate training, or a gated expert applied): the r-wide projection and the gate logit
        // from one product, so that x is read once forward and the backward pass makes one product for
        // x's gradient instead of two (a gate step should cost no more than an expert step).
        const torch::Tensor gate = gate_.dim() == 1 ? gate_.unsqueeze(1) : gate_;  // [d_in, 1]
        const int64_t r = At_.size(1);
        torch::Tensor both = torch::matmul(x, AtGate_.defined() ? AtGate_ : torch::cat({At_, gate}, 1));
        torch::Tensor down =
            torch::sigmoid(both.narrow(-1, r, 1)) * both.narrow(-1, 0, r);  // [batch, len, r]
        return base.add(torch::matmul(down, Bt), scale_);
    }
    const torch::Tensor At = At_.defined() ? At_ : A_.t();
    torch::Tensor down = torch::matmul(x, At);  // [batch, len, r]
    if (gate_.defined()) {
        // The per-token gate weighs the r-wide projection: the same product as weighing B A x, r/d_out
        // of the work.
        torch::Tensor logit = torch::matmul(x, gate_);  // [batch, len, 1], or [batch, len] for a [d_in] gate
        if (gate_.dim() == 1) logit = logit.unsqueeze(-1);
        down = torch::sigmoid(logit) * down;  // [batch, len, 1] * [batch, len, r]
    }
    return base.add(torch::matmul(down, Bt), scale_);  // base + s * B (gate * A x): [batch, len, d_out]
}

AttachedExpert::AttachedExpert(T5ModelImpl& model, const LoraExpert& expert, GateUse gate) {
    size_t attached = 0;
    for (auto& [site, linear] : model.linears()) {
        auto it = expert.modules.find(site.path);
        if (it == expert.modules.end()) continue;
        const LoraModule& m = it->second;
        if (gate == GateUse::Apply && !m.gate.defined()) {
            restore();
            throw Error("expert '" + expert.name + "' has no gate at " + site.path);
        }
        previous_.emplace_back(linear, linear->adapter());
        linear->setAdapter(std::make_shared<TrainableLora>(
            m.A, m.B, expert.scale(), gate == GateUse::Apply ? m.gate : torch::Tensor()));
        ++attached;
    }
    if (attached != expert.modules.size()) {
        restore();
        throw Error("expert '" + expert.name + "' names modules that this model does not have");
    }
}

AttachedExpert::~AttachedExpert() {
    restore();
}

void AttachedExpert::restore() {
    for (auto it = previous_.rbegin(); it != previous_.rend(); ++it) it->first->setAdapter(it->second);
    previous_.clear();
}

FrozenModel::FrozenModel(T5ModelImpl& model) {
    for (torch::Tensor& p : model.parameters()) {
        flags_.emplace_back(p, p.requires_grad());
        p.set_requires_grad(false);
    }
}

FrozenModel::~FrozenModel() {
    for (auto& [p, flag] : flags_) p.set_requires_grad(flag);
}

}  // namespace phatgoose
