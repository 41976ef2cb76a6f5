#include "routing/expert_stack.h"

#include <dlfcn.h>

#include <cstring>

#include "error.h"
#include "experts/lora_expert.h"

namespace phatgoose {
namespace {

// Below this many (token, expert) pairs the per-op overhead of LibTorch dominates, and plain loops over
// the kept experts' A and B^T rows are several times faster (one-token decoding is this case).
constexpr int64_t kFewPairs = 8;

// OpenBLAS's cblas_sgemm, called directly for the many small per-expert products: through ATen each call
// costs about 10 us of dispatch, more than the product itself. Resolved from the BLAS LibTorch already
// loaded.
using Sgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc);
Sgemm cblasSgemm() {
    static const Sgemm sgemm = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "cblas_sgemm"));
    return sgemm;
}

// c[m, n] = a[m, k] b[k, n], all row-major and contiguous.
void matmulInto(float* c, const float* a, const float* b, int64_t m, int64_t k, int64_t n) {
    constexpr int kRowMajor = 101, kNoTrans = 111;
    if (Sgemm sgemm = cblasSgemm()) {
        sgemm(kRowMajor, kNoTrans, kNoTrans, int(m), int(n), int(k), 1.f, a, int(k), b, int(n), 0.f, c,
              int(n));
        return;
    }
    torch::Tensor out = torch::from_blob(c, {m, n});
    torch::mm_out(out, torch::from_blob(const_cast<float*>(a), {m, k}),
                  torch::from_blob(const_cast<float*>(b), {k, n}));
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
    if (raw) return addGroupedRaw(out, x.contiguous(), experts.contiguous(), weights.contiguous());
    addGrouped(out, x, experts, weights);
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

}  // namespace phatgoose

namespace phatgoose {

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
    std::vector<float> xs(pair_count * size_t(d_in)), h(pair_count * size_t(r)),
        ys(pair_count * size_t(d_out));
    const float* xp = x.data_ptr<float>();
    for (int64_t p = 0; p < pairs; ++p)
        std::memcpy(&xs[size_t(p * d_in)], xp + token_of[size_t(p)] * d_in, size_t(d_in) * sizeof(float));
    const float* As = At_.data_ptr<float>();
    const float* Bs = Bt_.data_ptr<float>();
    for (int64_t e = 0; e < n; ++e) {
        const int64_t rows = start[size_t(e + 1)] - start[size_t(e)], first = start[size_t(e)];
        if (rows == 0) continue;
        matmulInto(&h[size_t(first * r)], &xs[size_t(first * d_in)], As + e * d_in * r, rows, d_in, r);
        for (int64_t p = first; p < first + rows; ++p)
            for (int64_t i = 0; i < r; ++i) h[size_t(p * r + i)] *= weight_of[size_t(p)];
        matmulInto(&ys[size_t(first * d_out)], &h[size_t(first * r)], Bs + e * r * d_out, rows, r, d_out);
    }
    float* o = out.data_ptr<float>();
    for (int64_t p = 0; p < pairs; ++p) {
        float* dst = o + token_of[size_t(p)] * d_out;
        const float* src = &ys[size_t(p * d_out)];
        for (int64_t c = 0; c < d_out; ++c) dst[c] += src[c];
    }
}

}  // namespace phatgoose
