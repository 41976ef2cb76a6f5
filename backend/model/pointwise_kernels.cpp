#include "model/pointwise_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "error.h"
#include "model/half_convert.h"

namespace phatgoose {
namespace {

// Rows per thread below which a second thread costs more than it saves (~16k floats of work).
int64_t rowGrain(int64_t row_length) {
    return std::max<int64_t>(1, (16 << 10) / std::max<int64_t>(1, row_length));
}

bool avx2(KernelIsa isa) {
    return isa == KernelIsa::Avx2 && bestKernelIsa() == KernelIsa::Avx2;
}

// ---- Scalar definitions (the portable path, and the tails of the vector path) ---------------------------

constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
constexpr float kInvSqrtTwo = 0.7071067811865476f;

float activationScalar(float x, FeedForwardActivation a) {
    switch (a) {
        case FeedForwardActivation::Relu:
            return x > 0.0f ? x : 0.0f;
        case FeedForwardActivation::Gelu:
            return 0.5f * x * (1.0f + std::erf(x * kInvSqrtTwo));
        case FeedForwardActivation::GeluTanh:
            return 0.5f * x * (1.0f + std::tanh(kSqrtTwoOverPi * (x + 0.044715f * x * x * x)));
    }
    return x;
}

// ---- AVX2: exp, tanh and erf on eight lanes ---------------------------------------------------------------

// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor-like minimax polynomial (Cephes' expf
// coefficients), 2^n put into the exponent bits. Relative error ~2e-7. Below -87.3 the result is clamped at
// ~1e-38 instead of 0: the softmax's masked keys then weigh 1e-38 instead of nothing.
PHATGOOSE_AVX2 __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// tanh(u) = 1 - 2 / (e^{2u} + 1); beyond |u| = 9 tanh is 1 in float32.
PHATGOOSE_AVX2 __m256 tanh8(__m256 u) {
    u = _mm256_min_ps(_mm256_max_ps(u, _mm256_set1_ps(-9.0f)), _mm256_set1_ps(9.0f));
    const __m256 e = exp8(_mm256_add_ps(u, u));
    return _mm256_sub_ps(_mm256_set1_ps(1.0f),
                         _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
}

// erf(z) by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd in z.
PHATGOOSE_AVX2 __m256 erf8(__m256 z) {
    const __m256 sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0f));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                                   _mm256_fmadd_ps(a, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    return _mm256_or_ps(_mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)), sign);
}

PHATGOOSE_AVX2 __m256 activation8(__m256 x, FeedForwardActivation a) {
    const __m256 half_x = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    switch (a) {
        case FeedForwardActivation::Relu:
            return _mm256_max_ps(x, _mm256_setzero_ps());
        case FeedForwardActivation::Gelu:
            return _mm256_fmadd_ps(half_x, erf8(_mm256_mul_ps(x, _mm256_set1_ps(kInvSqrtTwo))), half_x);
        case FeedForwardActivation::GeluTanh: {
            const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
            const __m256 u = _mm256_mul_ps(_mm256_set1_ps(kSqrtTwoOverPi),
                                           _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), cube, x));
            return _mm256_fmadd_ps(half_x, tanh8(u), half_x);
        }
    }
    return x;
}

// ---- RMS norm
// ----------------------------------------------------------------------------------------------

void rmsNormRowsPortable(const float* x, const float* w, float* y, int64_t d, double eps, int64_t r0,
                         int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * d;
        float* yr = y + r * d;
        float lane[8] = {};
        int64_t c = 0;
        for (; c + 8 <= d; c += 8)
            for (int l = 0; l < 8; ++l) lane[l] += xr[c + l] * xr[c + l];
        float sum = 0;
        for (; c < d; ++c) sum += xr[c] * xr[c];
        for (float v : lane) sum += v;
        const float scale = 1.0f / std::sqrt(sum / float(d) + float(eps));
        for (c = 0; c < d; ++c) yr[c] = w[c] * (xr[c] * scale);
    }
}

PHATGOOSE_AVX2 void rmsNormRowsAvx2(const float* x, const float* w, float* y, int64_t d, double eps,
                                    int64_t r0, int64_t r1) {
    const int64_t body = d / 8 * 8;
    for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * d;
        float* yr = y + r * d;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t c = 0; c < body; c += 8) {
            const __m256 v = _mm256_loadu_ps(xr + c);
            acc = _mm256_fmadd_ps(v, v, acc);
        }
        float sum = laneTotal(acc);
        for (int64_t c = body; c < d; ++c) sum += xr[c] * xr[c];
        const float scale = 1.0f / std::sqrt(sum / float(d) + float(eps));
        const __m256 s = _mm256_set1_ps(scale);
        for (int64_t c = 0; c < body; c += 8)
            _mm256_storeu_ps(
                yr + c, _mm256_mul_ps(_mm256_loadu_ps(w + c), _mm256_mul_ps(_mm256_loadu_ps(xr + c), s)));
        for (int64_t c = body; c < d; ++c) yr[c] = w[c] * (xr[c] * scale);
    }
}

// ---- Activation
// ----------------------------------------------------------------------------------------------

PHATGOOSE_AVX2 void activateAvx2(float* a, const float* b, int64_t n, FeedForwardActivation act) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = activation8(_mm256_loadu_ps(a + i), act);
        if (b) v = _mm256_mul_ps(v, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(a + i, v);
    }
    for (; i < n; ++i) a[i] = activationScalar(a[i], act) * (b ? b[i] : 1.0f);
}

void activatePortable(float* a, const float* b, int64_t n, FeedForwardActivation act) {
    for (int64_t i = 0; i < n; ++i) a[i] = activationScalar(a[i], act) * (b ? b[i] : 1.0f);
}

// ---- Bias + softmax
// ----------------------------------------------------------------------------------------

void softmaxRowPortable(float* s, const float* bias, int64_t n) {
    float top = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
        if (bias) s[i] += bias[i];
        top = std::max(top, s[i]);
    }
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (s[i] = std::exp(s[i] - top));
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

PHATGOOSE_AVX2 void softmaxRowAvx2(float* s, const float* bias, int64_t n) {
    const int64_t body = n / 8 * 8;
    __m256 top8 = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < body; i += 8) {
        __m256 v = _mm256_loadu_ps(s + i);
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(s + i, v);
        top8 = _mm256_max_ps(top8, v);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, top8);
    float top = *std::max_element(lanes, lanes + 8);
    for (int64_t i = body; i < n; ++i) {
        if (bias) s[i] += bias[i];
        top = std::max(top, s[i]);
    }
    const __m256 shift = _mm256_set1_ps(top);
    __m256 sum8 = _mm256_setzero_ps();
    for (int64_t i = 0; i < body; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), shift));
        _mm256_storeu_ps(s + i, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    float sum = laneTotal(sum8);
    for (int64_t i = body; i < n; ++i) sum += (s[i] = std::exp(s[i] - top));
    const float inv = 1.0f / sum;
    const __m256 inv8 = _mm256_set1_ps(inv);
    for (int64_t i = 0; i < body; i += 8)
        _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), inv8));
    for (int64_t i = body; i < n; ++i) s[i] *= inv;
}

void requireFloatContiguous(const torch::Tensor& t, const char* what) {
    if (t.scalar_type() != torch::kFloat || !t.is_contiguous())
        throw Error(std::string(what) + ": needs a contiguous float32 tensor");
}

}  // namespace

torch::Tensor rmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps, KernelIsa isa) {
    requireFloatContiguous(x, "rmsNorm");
    requireFloatContiguous(weight, "rmsNorm weight");
    const int64_t d = x.size(-1);
    if (weight.numel() != d)
        throw Error("rmsNorm: weight has " + std::to_string(weight.numel()) + " values for rows of " +
                    std::to_string(d));
    torch::Tensor y = torch::empty_like(x);
    const float *xp = x.data_ptr<float>(), *wp = weight.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const bool vector = avx2(isa);
    runOnTwoThreads(x.numel() / std::max<int64_t>(1, d), rowGrain(d), [&](int64_t r0, int64_t r1) {
        if (vector) return rmsNormRowsAvx2(xp, wp, yp, d, eps, r0, r1);
        rmsNormRowsPortable(xp, wp, yp, d, eps, r0, r1);
    });
    return y;
}

void activateInPlace(torch::Tensor& a, FeedForwardActivation activation, const torch::Tensor& b,
                     KernelIsa isa) {
    requireFloatContiguous(a, "activateInPlace");
    if (b.defined()) {
        requireFloatContiguous(b, "activateInPlace gate half");
        if (b.sizes() != a.sizes()) throw Error("activateInPlace: the two halves differ in shape");
    }
    float* ap = a.data_ptr<float>();
    const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
    const bool vector = avx2(isa);
    runOnTwoThreads(a.numel(), 16 << 10, [&](int64_t i0, int64_t i1) {
        if (vector) return activateAvx2(ap + i0, bp ? bp + i0 : nullptr, i1 - i0, activation);
        activatePortable(ap + i0, bp ? bp + i0 : nullptr, i1 - i0, activation);
    });
}

void biasSoftmaxInPlace(torch::Tensor& scores, const torch::Tensor& bias, KernelIsa isa) {
    requireFloatContiguous(scores, "biasSoftmaxInPlace");
    if (scores.dim() != 4) throw Error("biasSoftmaxInPlace: scores must be [batch, heads, q_len, k_len]");
    torch::Tensor b;  // [batch, heads, q_len, k_len] with stride 1 along keys, 0 where broadcast
    if (bias.defined()) {
        b = bias.scalar_type() == torch::kFloat ? bias : bias.to(torch::kFloat);
        b = b.expand_as(scores);
        if (b.stride(3) != 1) b = b.contiguous();
    }
    const int64_t heads = scores.size(1), q_len = scores.size(2), k_len = scores.size(3);
    float* s = scores.data_ptr<float>();
    const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
    const bool vector = avx2(isa);
    runOnTwoThreads(scores.numel() / std::max<int64_t>(1, k_len), rowGrain(k_len),
                    [&](int64_t r0, int64_t r1) {
                        for (int64_t r = r0; r < r1; ++r) {
                            const int64_t q = r % q_len, h = r / q_len % heads, n = r / q_len / heads;
                            const float* bias_row =
                                bp ? bp + n * b.stride(0) + h * b.stride(1) + q * b.stride(2) : nullptr;
                            if (vector)
                                softmaxRowAvx2(s + r * k_len, bias_row, k_len);
                            else
                                softmaxRowPortable(s + r * k_len, bias_row, k_len);
                        }
                    });
}

}  // namespace phatgoose
