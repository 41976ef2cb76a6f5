#include "routing/expert_stack.h"

#include "error.h"
#include "experts/lora_expert.h"
#include "routing/lora_kernels.h"

namespace phatgoose {

ExpertStack::ExpertStack(const std::string& site, const std::vector<const LoraExpert*>& experts,
                         const std::vector<int64_t>& expert_ids)
    : expert_ids_(expert_ids) {
    if (experts.empty()) throw Error("routing: no expert covers " + site);
    int64_t rank = 0;
    for (const LoraExpert* e : experts) rank = std::max(rank, e->modules.at(site).A.size(0));
    const LoraModule& first = experts.front()->modules.at(site);
    const int64_t n = int64_t(experts.size()), d_in = first.A.size(1), d_out = first.B.size(0);
    At_ = torch::zeros({n, d_in, rank});
    Bt_ = torch::zeros({n, rank, d_out});
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < n; ++i) {
        const LoraModule& m = experts[size_t(i)]->modules.at(site);
        const int64_t r = m.A.size(0);
        At_[i].narrow(1, 0, r).copy_(m.A.t());
        Bt_[i].narrow(0, 0, r).copy_(m.B.t() * experts[size_t(i)]->scale());
    }
}

int64_t ExpertStack::bytes() const {
    return (At_.numel() + Bt_.numel()) * int64_t(sizeof(float));
}

torch::Tensor ExpertStack::deltaWeight(int64_t e) const {
    return torch::mm(Bt_[e].t(), At_[e].t());
}

void ExpertStack::addInto(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                          const torch::Tensor& weights) const {
    // The raw loops bypass autograd; training through a routed layer takes the ATen path.
    const bool raw = !x.requires_grad() && !out.requires_grad() && out.is_contiguous();
    if (raw) return addGroupedRaw(out, x.contiguous(), experts.contiguous(), weights.contiguous());
    addGrouped(out, x, experts, weights);
}

void ExpertStack::addGrouped(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                             const torch::Tensor& weights) const {
    const int64_t k = experts.size(1);
    // (token, expert) pairs sorted by expert: each expert's rows are one contiguous slice. Only out-of-place
    // ops here, so that gradients flow.
    torch::Tensor flat = experts.reshape({-1});  // [pairs]
    torch::Tensor order = flat.argsort();
    torch::Tensor token_of = order.div(k, "floor");                                      // [pairs]
    torch::Tensor w_sorted = weights.reshape({-1}).index_select(0, order).unsqueeze(1);  // [pairs, 1]
    torch::Tensor counts = flat.bincount(torch::Tensor(), size());
    const int64_t* count = counts.data_ptr<int64_t>();
    torch::Tensor xs = x.index_select(0, token_of);  // [pairs, d_in]
    std::vector<torch::Tensor> ys;
    for (int64_t e = 0, start = 0; e < size(); start += count[e], ++e)
        if (count[e] > 0) {
            torch::Tensor h =
                torch::mm(xs.narrow(0, start, count[e]), At_[e]) * w_sorted.narrow(0, start, count[e]);
            ys.push_back(torch::mm(h, Bt_[e]));  // [count, d_out]
        }
    out = out.index_add(0, token_of, torch::cat(ys));
}

torch::Tensor ExpertStack::applyDense(const torch::Tensor& x, const torch::Tensor& experts,
                                      const torch::Tensor& weights) const {
    // Every expert's full delta for every token: [N, T, d_out]; then a dense [T, N] weight matrix.
    torch::Tensor all = torch::matmul(torch::matmul(x.unsqueeze(0), At_), Bt_);
    torch::Tensor dense = torch::zeros({x.size(0), size()}).scatter_add(1, experts, weights);
    return torch::einsum("ntd,tn->td", {all, dense});
}

void ExpertStack::addGroupedRaw(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                                const torch::Tensor& weights) const {
    const int64_t tokens = x.size(0), k = experts.size(1), pairs = tokens * k;
    const int64_t n = size(), r = rank(), d_in = dIn(), d_out = dOut();
    const int64_t* ids = experts.data_ptr<int64_t>();
    const float* w = weights.data_ptr<float>();
    // A counting sort of the (token, expert) pairs by expert: each expert's rows become one contiguous block.
    const auto pair_count = static_cast<size_t>(pairs);
    std::vector<int64_t> start(static_cast<size_t>(n + 1), 0), token_of(pair_count);
    std::vector<float> weight_of(pair_count);
    for (int64_t p = 0; p < pairs; ++p) ++start[size_t(ids[p] + 1)];
    for (int64_t e = 0; e < n; ++e) start[size_t(e + 1)] += start[size_t(e)];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t p = 0; p < pairs; ++p) {
        const int64_t slot = fill[size_t(ids[p])]++;
        token_of[size_t(slot)] = p / k;
        weight_of[size_t(slot)] = w[p];
    }
    std::vector<float> h(pair_count * size_t(r));  // [pairs, r], weighted
    const float* xp = x.data_ptr<float>();
    float* op = out.data_ptr<float>();
    const float* As = At_.data_ptr<float>();
    const float* Bs = Bt_.data_ptr<float>();
    for (int64_t e = 0; e < n; ++e) {
        const int64_t first = start[size_t(e)];
        const RoutedRows rows{&token_of[size_t(first)], &weight_of[size_t(first)],
                              start[size_t(e + 1)] - first};
        if (rows.count == 0) continue;
        loraDown(xp, d_in, rows, As + e * d_in * r, r, &h[size_t(first * r)]);
        loraUpAdd(op, d_out, rows, &h[size_t(first * r)], Bs + e * r * d_out, r);
    }
}

}  // namespace phatgoose
