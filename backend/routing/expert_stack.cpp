#include "routing/expert_stack.h"

#include "error.h"
#include "experts/lora_expert.h"

namespace phatgoose {
namespace {

// Below this many (token, expert) pairs the per-op overhead of LibTorch dominates, and plain loops over
// the kept experts' A and B^T rows are several times faster (one-token decoding is this case).
constexpr int64_t kFewPairs = 8;

// out[rows[p]] += values[p] for every p: ATen's index_add_ along dim 0 costs a tensor op per row.
void scatterAddRows(torch::Tensor& out, const torch::Tensor& rows_in, const torch::Tensor& values_in) {
    torch::Tensor rows = rows_in.contiguous(), values = values_in.contiguous();
    const int64_t n = rows.size(0), width = values.size(1);
    const int64_t* r = rows.data_ptr<int64_t>();
    const float* v = values.data_ptr<float>();
    float* o = out.data_ptr<float>();
    for (int64_t p = 0; p < n; ++p) {
        float* dst = o + r[p] * width;
        const float* src = v + p * width;
        for (int64_t c = 0; c < width; ++c) dst[c] += src[c];
    }
}

}  // namespace

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
    if (raw && experts.numel() <= kFewPairs) return addFewTokens(out, x, experts, weights);
    addGrouped(out, x, experts, weights, raw);
}

void ExpertStack::addFewTokens(torch::Tensor& out, const torch::Tensor& x_in, const torch::Tensor& experts_in,
                               const torch::Tensor& weights_in) const {
    torch::Tensor x = x_in.contiguous(), experts = experts_in.contiguous(), weights = weights_in.contiguous();
    const int64_t tokens = x.size(0), k = experts.size(1), r = rank(), d_in = dIn(), d_out = dOut();
    const float* xs = x.data_ptr<float>();
    const int64_t* ids = experts.data_ptr<int64_t>();
    const float* ws = weights.data_ptr<float>();
    const float* As = At_.data_ptr<float>();
    const float* Bs = Bt_.data_ptr<float>();
    float* os = out.data_ptr<float>();
    std::vector<float> h(static_cast<size_t>(r));
    for (int64_t t = 0; t < tokens; ++t) {
        const float* xt = xs + t * d_in;
        float* ot = os + t * d_out;
        for (int64_t j = 0; j < k; ++j) {
            const int64_t e = ids[t * k + j];
            const float* At = As + e * d_in * r;  // [d_in, r]
            std::fill(h.begin(), h.end(), 0.f);
            for (int64_t c = 0; c < d_in; ++c) {
                const float xc = xt[c];
                for (int64_t i = 0; i < r; ++i) h[size_t(i)] += xc * At[c * r + i];
            }
            for (float& hi : h) hi *= ws[t * k + j];
            const float* Bt = Bs + e * r * d_out;  // [r, d_out]
            for (int64_t i = 0; i < r; ++i) {
                const float hi = h[size_t(i)];
                for (int64_t c = 0; c < d_out; ++c) ot[c] += hi * Bt[i * d_out + c];
            }
        }
    }
}

void ExpertStack::addGrouped(torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& experts,
                             const torch::Tensor& weights, bool raw_scatter) const {
    const int64_t k = experts.size(1), pairs = experts.numel();
    // (token, expert) pairs sorted by expert, so that each expert's rows are one contiguous slice and the
    // whole layer costs two small matmuls per used expert plus a handful of gathers.
    torch::Tensor flat = experts.reshape({-1});  // [pairs]
    torch::Tensor order = flat.argsort();
    torch::Tensor token_of = order.div(k, "floor");  // [pairs]
    torch::Tensor counts = flat.bincount(torch::Tensor(), size());
    const int64_t* count = counts.data_ptr<int64_t>();
    torch::Tensor xs = x.index_select(0, token_of);                // [pairs, d_in]
    torch::Tensor h = torch::empty({pairs, rank()}, x.options());  // [pairs, r]
    for (int64_t e = 0, start = 0; e < size(); start += count[e], ++e)
        if (count[e] > 0) {
            torch::Tensor slice = h.narrow(0, start, count[e]);
            torch::mm_out(slice, xs.narrow(0, start, count[e]), At_[e]);
        }
    h.mul_(weights.reshape({-1}).index_select(0, order).unsqueeze(1));
    torch::Tensor ys = torch::empty({pairs, dOut()}, x.options());  // [pairs, d_out]
    for (int64_t e = 0, start = 0; e < size(); start += count[e], ++e)
        if (count[e] > 0) {
            torch::Tensor slice = ys.narrow(0, start, count[e]);
            torch::mm_out(slice, h.narrow(0, start, count[e]), Bt_[e]);
        }
    if (raw_scatter)
        scatterAddRows(out, token_of, ys);
    else
        out.index_add_(0, token_of, ys);
}

torch::Tensor ExpertStack::applyDense(const torch::Tensor& x, const torch::Tensor& experts,
                                      const torch::Tensor& weights) const {
    // Every expert's full delta for every token: [N, T, d_out]; then a dense [T, N] weight matrix.
    torch::Tensor all = torch::matmul(torch::matmul(x.unsqueeze(0), At_), Bt_);
    torch::Tensor dense = torch::zeros({x.size(0), size()}).scatter_add(1, experts, weights);
    return torch::einsum("ntd,tn->td", {all, dense});
}

}  // namespace phatgoose
