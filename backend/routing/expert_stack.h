#pragma once
// The LoRA experts of one linear layer, gathered for routing. No copy: each member shares its library's A
// [r, d_in] and B [d_out, r] in their stored dtype (F32, BF16 or F16, mapped from disk for a loaded
// library), with its own rank and its scale s_i applied at run time. Applying a sparse routing touches
// only the kept experts, so a large library's pages become resident only as routing uses them.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "routing/lora_kernels.h"

namespace phatgoose {

struct LoraExpert;

class ExpertStack {
public:
    // experts[i] must have the module `site`; `expert_ids[i]` is its index in the library (for traces).
    ExpertStack(const std::string& site, const std::vector<const LoraExpert*>& experts,
                const std::vector<int64_t>& expert_ids);

    int64_t size() const { return int64_t(members_.size()); }
    int64_t rank() const { return max_rank_; }  // the largest member's
    int64_t dIn() const { return d_in_; }
    int64_t dOut() const { return d_out_; }
    const std::vector<int64_t>& expertIds() const { return expert_ids_; }
    int64_t bytes() const;  // of the members' factors (shared with the library, not copied)

    // out[t] += sum_j weights[t, j] * s_e B_e A_e x[t] for e = experts[t, j], in place when nothing needs
    // gradients (adding into the base layer's output saves two passes over [T, d_out]); with autograd,
    // `out` is replaced by the out-of-place sum.
    // x: [T, d_in]; experts: [T, k] int64 local indices; weights: [T, k]; out: [T, d_out] contiguous.
    void addInto(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                 const torch::Tensor& weights) const;
    // The same by brute force: every expert's delta for every token, then the weighted sum. For tests.
    torch::Tensor applyDense(const torch::Tensor& x, const torch::Tensor& experts,
                             const torch::Tensor& weights) const;
    // s_e B_e A_e as a dense [d_out, d_in] matrix.
    torch::Tensor deltaWeight(int64_t e) const;

private:
    // With autograd (training through routed layers): ATen ops only.
    void addGrouped(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                    const torch::Tensor& weights) const;
    // Inference: a counting sort of the pairs by expert, then lora_kernels' gather-multiply-scatter per
    // used expert.
    void addGroupedRaw(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                       const torch::Tensor& weights) const;
    struct Member {
        torch::Tensor A;  // [r, d_in], contiguous, as stored
        torch::Tensor B;  // [d_out, r], contiguous, as stored
        Factor a, b;      // the same for the kernels
        double scale;     // s_i
    };
    std::vector<Member> members_;
    std::vector<int64_t> expert_ids_;
    int64_t d_in_ = 0, d_out_ = 0, max_rank_ = 0;
};

}  // namespace phatgoose
