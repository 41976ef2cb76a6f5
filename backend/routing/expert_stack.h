#pragma once
// The LoRA experts of one linear layer, stacked for routing: A^T [N, d_in, r] and B^T [N, r, d_out], zero-
// padded to the largest rank (exact: padded rows of A and columns of B contribute nothing), with the
// scale s_i folded into B^T. Applying a sparse routing touches only the kept experts.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace phatgoose {

struct LoraExpert;

class ExpertStack {
public:
    // experts[i] must have the module `site`; `expert_ids[i]` is its index in the library (for traces).
    ExpertStack(const std::string& site, const std::vector<const LoraExpert*>& experts,
                const std::vector<int64_t>& expert_ids);

    int64_t size() const { return At_.size(0); }
    int64_t rank() const { return At_.size(2); }
    int64_t dIn() const { return At_.size(1); }
    int64_t dOut() const { return Bt_.size(2); }
    const std::vector<int64_t>& expertIds() const { return expert_ids_; }
    int64_t bytes() const;

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
    // Both transposed so that the kernels' inner loops are contiguous multiply-adds of rank- or
    // d_out-wide rows (a dot-product reduction over floats the compiler may not reorder).
    torch::Tensor At_;  // [N, d_in, r]
    torch::Tensor Bt_;  // [N, r, d_out], scaled by s
    std::vector<int64_t> expert_ids_;
};

}  // namespace phatgoose
