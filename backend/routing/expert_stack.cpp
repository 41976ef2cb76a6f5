#include "routing/expert_stack.h"

#include "error.h"
#include "experts/lora_expert.h"
#include "model/weight_kernels.h"
#include "routing/lora_kernels.h"

namespace phatgoose {

namespace {

FactorType factorType(const torch::Tensor& t) {
    switch (t.scalar_type()) {
        case torch::kFloat:
            return FactorType::F32;
        case torch::kBFloat16:
            return FactorType::BF16;
        case torch::kHalf:
            return FactorType::F16;
        default:
            throw Error("routing: LoRA factors must be F32, BF16 or F16");
    }
}

}  // namespace

ExpertStack::ExpertStack(const std::string& site, const std::vector<const LoraExpert*>& experts,
                         const std::vector<int64_t>& expert_ids)
    : expert_ids_(expert_ids) {
    if (experts.empty()) throw Error("routing: no expert covers " + site);
    const LoraModule& first = experts.front()->modules.at(site);
    d_in_ = first.A.size(1);
    d_out_ = first.B.size(0);
    for (const LoraExpert* e : experts) {
        const LoraModule& m = e->modules.at(site);
        Member member{m.A.detach().contiguous(), m.B.detach().contiguous(), {}, {}, e->scale()};
        member.a = {member.A.data_ptr(), factorType(member.A)};
        member.b = {member.B.data_ptr(), factorType(member.B)};
        members_.push_back(std::move(member));
        max_rank_ = std::max(max_rank_, m.A.size(0));
    }
}

int64_t ExpertStack::bytes() const {
    int64_t total = 0;
    for (const Member& m : members_) total += int64_t(m.A.nbytes() + m.B.nbytes());
    return total;
}

torch::Tensor ExpertStack::deltaWeight(int64_t e) const {
    const Member& m = members_[size_t(e)];
    return torch::mm(m.B.to(torch::kFloat), m.A.to(torch::kFloat)) * m.scale;
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
            const Member& m = members_[size_t(e)];
            torch::Tensor h = torch::mm(xs.narrow(0, start, count[e]), m.A.to(torch::kFloat).t()) *
                              (w_sorted.narrow(0, start, count[e]) * m.scale);
            ys.push_back(torch::mm(h, m.B.to(torch::kFloat).t()));  // [count, d_out]
        }
    out = out.index_add(0, token_of, torch::cat(ys));
}

torch::Tensor ExpertStack::applyDense(const torch::Tensor& x, const torch::Tensor& experts,
                                      const torch::Tensor& weights) const {
    // Every expert's full delta for every token: [N, T, d_out]; then a dense [T, N] weight matrix.
    std::vector<torch::Tensor> deltas;
    for (const Member& m : members_)
        deltas.push_back(torch::mm(torch::mm(x, m.A.to(torch::kFloat).t()), m.B.to(torch::kFloat).t()) *
                         m.scale);
    torch::Tensor all = torch::stack(deltas);
    torch::Tensor dense = torch::zeros({x.size(0), size()}).scatter_add(1, experts, weights);
    return torch::einsum("ntd,tn->td", {all, dense});
}

void ExpertStack::addGroupedRaw(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                                const torch::Tensor& weights) const {
    const int64_t tokens = x.size(0), k = experts.size(1), pairs = tokens * k;
    const int64_t n = size(), r = rank(), d_in = dIn(), d_out = dOut();  // r: the largest rank, for h
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
        // The expert's scale rides on the routing weight: s (w (A x)) is the same product.
        weight_of[size_t(slot)] = float(w[p] * members_[size_t(ids[p])].scale);
    }
    std::vector<float> h(pair_count * size_t(r));  // [pairs, r], weighted
    const float* xp = x.data_ptr<float>();
    float* op = out.data_ptr<float>();
    std::vector<int64_t> used;
    for (int64_t e = 0; e < n; ++e)
        if (start[size_t(e + 1)] > start[size_t(e)]) used.push_back(e);
    auto rowsOf = [&](int64_t e) {
        const int64_t first = start[size_t(e)];
        return RoutedRows{&token_of[size_t(first)], &weight_of[size_t(first)], start[size_t(e + 1)] - first};
    };
    // Prefill-sized work on wide layers goes to two threads: the down products split by expert (each writes
    // its own rows of h), the up products by output column (each thread adds into its own columns of every
    // row). Decoding's single row, and narrow layers (t5-small's 512), stay on one thread: measured, waking
    // the helper next to OpenBLAS's spinning workers cost more than it saved there.
    const bool split = pairs >= 16 && d_out >= 1024;
    runOnTwoThreads(int64_t(used.size()), split ? 1 : int64_t(used.size()) + 1, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
            const int64_t e = used[size_t(u)];
            const Member& m = members_[size_t(e)];
            loraDown(xp, d_in, rowsOf(e), m.a, m.A.size(0), &h[size_t(start[size_t(e)] * r)]);
        }
    });
    runOnTwoThreads(d_out, split ? 64 : d_out + 1, [&](int64_t c0, int64_t c1) {
        for (int64_t e : used) {
            const Member& m = members_[size_t(e)];
            const int64_t rank_e = m.A.size(0);
            const Factor B = factorRows(m.b, c0, rank_e);
            loraUpAdd(op + c0, c1 - c0, rowsOf(e), &h[size_t(start[size_t(e)] * r)], B, rank_e, bestLoraIsa(),
                      d_out);
        }
    });
}

}  // namespace phatgoose
