#include "routing/lora_kernels.h"

// GCC 12's AVX-512 intrinsics start their results from _mm512_undefined_ps(), which its own
// -Wmaybe-uninitialized then reports wherever they are inlined (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <vector>

#include "model/half_convert.h"

namespace phatgoose {
namespace {

template <class E>
const typename E::T* typed(Factor f) {
    return static_cast<const typename E::T*>(f.data);
}

// ---- Portable: plain loops (dotWidened's eight partial sums let the compiler vectorise) -----------------

template <class E>
void downPortable(const float* x, int64_t d_in, const RoutedRows& rows, const typename E::T* A, int64_t r,
                  float* h) {
    for (int64_t p = 0; p < rows.count; ++p) {
        const float* xt = x + rows.token[p] * d_in;
        for (int64_t j = 0; j < r; ++j) h[p * r + j] = rows.weight[p] * dotWidened<E>(xt, A + j * d_in, d_in);
    }
}

template <class E>
void upPortable(float* out, int64_t stride, int64_t d_out, const RoutedRows& rows, const float* h,
                const typename E::T* B, int64_t r) {
    for (int64_t p = 0; p < rows.count; ++p) {
        float* o = out + rows.token[p] * stride;
        for (int64_t c = 0; c < d_out; ++c) o[c] += dotWidened<E>(h + p * r, B + c * r, r);
    }
}

// ---- AVX2 + FMA ----------------------------------------------------------------------------------------

// Down: R token rows (1 or 2) times four rows of A: 4R independent accumulators; each step loads the R
// inputs once and four rows of A once. Sums are reduced once per dot product, after the d_in loop.
template <class E, int R, int J>
PHATGOOSE_AVX2 void downBlock(const float* const* xr, const float* w, int64_t d_in, const typename E::T* A,
                              float* const* hr) {
    const int64_t body = d_in / 8 * 8;
    __m256 acc[R][J];
    for (auto& a : acc)
        for (auto& v : a) v = _mm256_setzero_ps();
    for (int64_t c = 0; c < body; c += 8) {
        __m256 xv[R];
        for (int i = 0; i < R; ++i) xv[i] = _mm256_loadu_ps(xr[i] + c);
        for (int j = 0; j < J; ++j) {
            const __m256 a = load8(E(), A + j * d_in + c);
            for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(a, xv[i], acc[i][j]);
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < J; ++j) {
            float total = laneTotal(acc[i][j]);
            for (int64_t c = body; c < d_in; ++c) total += E::scalar(A + j * d_in + c) * xr[i][c];
            hr[i][j] = w[i] * total;
        }
}

template <class E, int R>
PHATGOOSE_AVX2 void downRows(const float* const* xr, const float* w, int64_t d_in, const typename E::T* A,
                             int64_t r, float* const* hr) {
    int64_t j = 0;
    for (; j + 4 <= r; j += 4) {
        float* hj[R];
        for (int i = 0; i < R; ++i) hj[i] = hr[i] + j;
        downBlock<E, R, 4>(xr, w, d_in, A + j * d_in, hj);
    }
    for (; j < r; ++j) {
        float* hj[R];
        for (int i = 0; i < R; ++i) hj[i] = hr[i] + j;
        downBlock<E, R, 1>(xr, w, d_in, A + j * d_in, hj);
    }
}

template <class E>
PHATGOOSE_AVX2 void downAvx2(const float* x, int64_t d_in, const RoutedRows& rows, const typename E::T* A,
                             int64_t r, float* h) {
    int64_t p = 0;
    for (; p + 2 <= rows.count; p += 2) {
        const float* xr[2] = {x + rows.token[p] * d_in, x + rows.token[p + 1] * d_in};
        float* hr[2] = {h + p * r, h + (p + 1) * r};
        downRows<E, 2>(xr, rows.weight + p, d_in, A, r, hr);
    }
    if (p < rows.count) {
        const float* xr[1] = {x + rows.token[p] * d_in};
        float* hr[1] = {h + p * r};
        downRows<E, 1>(xr, rows.weight + p, d_in, A, r, hr);
    }
}

// The eight lane sums of a[0..7], as one vector: lane i holds the total of a[i].
PHATGOOSE_AVX2 inline __m256 laneTotals8(const __m256* a) {
    const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 t0 = _mm256_hadd_ps(s01, s23), t1 = _mm256_hadd_ps(s45, s67);
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

constexpr int64_t kMaxVectorRank = 64;  // h in registers: at most eight vectors

// Up: for one row, eight outputs at a time, each a dot product of h (held in registers) with a row of B;
// the eight results reduce into one vector and add into the output row.
template <class E>
PHATGOOSE_AVX2 void upRow(float* o, int64_t d_out, const float* hp, const typename E::T* B, int64_t r) {
    const int64_t chunks = r / 8, body = chunks * 8;
    __m256 hv[kMaxVectorRank / 8];
    for (int64_t k = 0; k < chunks; ++k) hv[k] = _mm256_loadu_ps(hp + k * 8);
    int64_t c = 0;
    for (; c + 8 <= d_out; c += 8) {
        __m256 acc[8];
        for (int i = 0; i < 8; ++i) {
            acc[i] = _mm256_setzero_ps();
            for (int64_t k = 0; k < chunks; ++k)
                acc[i] = _mm256_fmadd_ps(load8(E(), B + (c + i) * r + k * 8), hv[k], acc[i]);
        }
        __m256 sum = _mm256_add_ps(_mm256_loadu_ps(o + c), laneTotals8(acc));
        if (body < r) {
            alignas(32) float tail[8];
            for (int i = 0; i < 8; ++i) {
                float t = 0;
                for (int64_t k = body; k < r; ++k) t += E::scalar(B + (c + i) * r + k) * hp[k];
                tail[i] = t;
            }
            sum = _mm256_add_ps(sum, _mm256_load_ps(tail));
        }
        _mm256_storeu_ps(o + c, sum);
    }
    for (; c < d_out; ++c) o[c] += dotWidened<E>(hp, B + c * r, r);
}

template <class E>
PHATGOOSE_AVX2 void upAvx2(float* out, int64_t stride, int64_t d_out, const RoutedRows& rows, const float* h,
                           const typename E::T* B, int64_t r) {
    for (int64_t p = 0; p < rows.count; ++p) upRow<E>(out + rows.token[p] * stride, d_out, h + p * r, B, r);
}

// ---- Up with many rows: B transposed once into float32 [r, d_out], then blocks of 4 rows x 16 columns ----
//
// Each step loads two vectors of B^T and broadcasts one value per row: 6 loads for 8 FMAs, which keeps both
// FMA units busy. Column tails (a width not a multiple of 16) use masked loads and stores, so no row is
// ever read or written past its end. The transposition costs about two rows' worth of the dot-product form
// below, so it is taken from two rows up.

constexpr int kBlockRows = 4;
alignas(32) constexpr int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

PHATGOOSE_AVX2 inline __m256i firstLanes(int64_t n) {  // the first n (0..8) lanes on
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - n));
}

// Columns [j, j + 16) of a row, clipped to `width` of them.
struct Span16 {
    bool full;
    __m256i lo, hi;
};

PHATGOOSE_AVX2 inline Span16 span16(int64_t width) {
    return {width >= 16, firstLanes(std::min<int64_t>(width, 8)),
            firstLanes(std::clamp<int64_t>(width - 8, 0, 8))};
}

PHATGOOSE_AVX2 inline void load16(const Span16& s, const float* p, __m256& lo, __m256& hi) {
    lo = s.full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, s.lo);
    hi = s.full ? _mm256_loadu_ps(p + 8) : _mm256_maskload_ps(p + 8, s.hi);
}

PHATGOOSE_AVX2 inline void store16(const Span16& s, float* p, __m256 lo, __m256 hi) {
    if (s.full) {
        _mm256_storeu_ps(p, lo);
        _mm256_storeu_ps(p + 8, hi);
    } else {
        _mm256_maskstore_ps(p, s.lo, lo);
        _mm256_maskstore_ps(p + 8, s.hi, hi);
    }
}

// orow[i][:] += h_i Bt for R rows; h rows are r apart; the R output rows must be distinct.
template <int R>
PHATGOOSE_AVX2 void upBlock(float* const* orow, const float* h, const float* Bt, int64_t r, int64_t d_out) {
    for (int64_t c = 0; c < d_out; c += 16) {
        const Span16 span = span16(d_out - c);
        __m256 acc[R][2];
        for (int i = 0; i < R; ++i) load16(span, orow[i] + c, acc[i][0], acc[i][1]);
        const float* b = Bt + c;
        for (int64_t k = 0; k < r; ++k, b += d_out) {
            __m256 b0, b1;
            load16(span, b, b0, b1);
            for (int i = 0; i < R; ++i) {
                const __m256 hk = _mm256_broadcast_ss(h + i * r + k);
                acc[i][0] = _mm256_fmadd_ps(hk, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(hk, b1, acc[i][1]);
            }
        }
        for (int i = 0; i < R; ++i) store16(span, orow[i] + c, acc[i][0], acc[i][1]);
    }
}

bool distinct(const int64_t* token, int n) {
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
            if (token[i] == token[j]) return false;
    return true;
}

PHATGOOSE_AVX2 void upTransposed(float* out, int64_t stride, int64_t d_out, const RoutedRows& rows,
                                 const float* h, const float* Bt, int64_t r) {
    int64_t p = 0;
    for (; p + kBlockRows <= rows.count; p += kBlockRows) {
        // Two rows for one token would each add to a stale copy of that output row: take them one by one.
        if (!distinct(rows.token + p, kBlockRows)) {
            for (int i = 0; i < kBlockRows; ++i) {
                float* o = out + rows.token[p + i] * stride;
                upBlock<1>(&o, h + (p + i) * r, Bt, r, d_out);
            }
            continue;
        }
        float* orow[kBlockRows];
        for (int i = 0; i < kBlockRows; ++i) orow[i] = out + rows.token[p + i] * stride;
        upBlock<kBlockRows>(orow, h + p * r, Bt, r, d_out);
    }
    for (; p < rows.count; ++p) {
        float* o = out + rows.token[p] * stride;
        upBlock<1>(&o, h + p * r, Bt, r, d_out);
    }
}

// B [d_out, r] (any stored type) as float32 B^T [r, d_out]: 8 x 8 blocks widened and transposed in registers.
template <class E>
PHATGOOSE_AVX2 void transposeB(const typename E::T* B, int64_t d_out, int64_t r, float* Bt) {
    const int64_t c_body = d_out / 8 * 8, k_body = r / 8 * 8;
    for (int64_t c = 0; c < c_body; c += 8)
        for (int64_t k = 0; k < k_body; k += 8) {
            __m256 v[8], t[8], u[8];
            for (int i = 0; i < 8; ++i) v[i] = load8(E(), B + (c + i) * r + k);  // output c+i, k..k+8
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
                u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
                u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
                u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            for (int j = 0; j < 4; ++j) {
                _mm256_storeu_ps(Bt + (k + j) * d_out + c, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
                _mm256_storeu_ps(Bt + (k + j + 4) * d_out + c, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
            }
        }
    for (int64_t c = 0; c < d_out; ++c)  // the tails: columns past c_body, ranks past k_body
        for (int64_t k = (c < c_body ? k_body : 0); k < r; ++k) Bt[k * d_out + c] = E::scalar(B + c * r + k);
}

template <class E>
void down(const float* x, int64_t d_in, const RoutedRows& rows, Factor A, int64_t r, float* h, LoraIsa isa) {
    if (isa == LoraIsa::Avx2) return downAvx2<E>(x, d_in, rows, typed<E>(A), r, h);
    downPortable<E>(x, d_in, rows, typed<E>(A), r, h);
}

// ---- Up with AVX-512, a few rows, rank a multiple of 16: B read once in its stored layout ----------------
// Prefill sends each of 166 experts one or two rows, so the up product is B (20-30 MB per module at T5-XL)
// streamed for almost no arithmetic: transposing B into a buffer first tripled its traffic, and eight-lane
// dot products spent their time reducing. Here sixteen rows of B (sixteen output columns by sixteen of r)
// are transposed in registers and every routed row is added from them.
constexpr int64_t kUp512Rows = 8;

template <class E>
PHATGOOSE_AVX512 void upAvx512(float* out, int64_t stride, int64_t d_out, const RoutedRows& rows,
                               const float* h, const typename E::T* B, int64_t r) {
    const int64_t n = rows.count;  // <= kUp512Rows
    int64_t c = 0;
    for (; c + 16 <= d_out; c += 16) {
        __m512 acc[kUp512Rows];
        for (int64_t p = 0; p < n; ++p) acc[p] = _mm512_setzero_ps();
        for (int64_t j0 = 0; j0 < r; j0 += 16) {
            __m512 t[16];
            for (int q = 0; q < 16; ++q) t[q] = load16(E(), B + (c + q) * r + j0);  // [column, j]
            transpose16(t);                                                         // [j, column]
            for (int64_t p = 0; p < n; ++p)
                for (int j = 0; j < 16; ++j)
                    acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(h[p * r + j0 + j]), t[j], acc[p]);
        }
        for (int64_t p = 0; p < n; ++p) {  // in row order: rows that share a token add one after the other
            float* o = out + rows.token[p] * stride + c;
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), acc[p]));
        }
    }
    for (; c < d_out; ++c)
        for (int64_t p = 0; p < n; ++p)
            out[rows.token[p] * stride + c] += dotWidened<E>(h + p * r, B + c * r, r);
}

template <class E>
void up(float* out, int64_t stride, int64_t d_out, const RoutedRows& rows, const float* h, Factor B,
        int64_t r, LoraIsa isa) {
    if (isa == LoraIsa::Avx2 && cpuHasAvx512() && r % 16 == 0 && rows.count <= kUp512Rows)
        return upAvx512<E>(out, stride, d_out, rows, h, typed<E>(B), r);
    if (isa == LoraIsa::Avx2 && rows.count >= 2) {
        thread_local std::vector<float> Bt;
        Bt.resize(size_t(r * d_out));
        transposeB<E>(typed<E>(B), d_out, r, Bt.data());
        return upTransposed(out, stride, d_out, rows, h, Bt.data(), r);
    }
    if (isa == LoraIsa::Avx2 && r <= kMaxVectorRank)
        return upAvx2<E>(out, stride, d_out, rows, h, typed<E>(B), r);
    upPortable<E>(out, stride, d_out, rows, h, typed<E>(B), r);
}

LoraIsa usable(LoraIsa isa) {
    return isa == LoraIsa::Avx2 && bestLoraIsa() == LoraIsa::Avx2 ? LoraIsa::Avx2 : LoraIsa::Portable;
}

}  // namespace

LoraIsa bestLoraIsa() {
    return cpuHasAvx2Fma() ? LoraIsa::Avx2 : LoraIsa::Portable;
}

int64_t factorElementSize(FactorType type) {
    return type == FactorType::F32 ? 4 : 2;
}

Factor factorRows(Factor f, int64_t row, int64_t width) {
    return {static_cast<const char*>(f.data) + row * width * factorElementSize(f.type), f.type};
}

const char* loraIsaName(LoraIsa isa) {
    return isa == LoraIsa::Avx2 ? "avx2" : "portable";
}

void loraDown(const float* x, int64_t d_in, const RoutedRows& rows, Factor A, int64_t r, float* h,
              LoraIsa isa) {
    isa = usable(isa);
    switch (A.type) {
        case FactorType::F32:
            return down<F32Weights>(x, d_in, rows, A, r, h, isa);
        case FactorType::BF16:
            return down<Bf16Weights>(x, d_in, rows, A, r, h, isa);
        case FactorType::F16:
            return down<F16Weights>(x, d_in, rows, A, r, h, isa);
    }
}

void loraUpAdd(float* out, int64_t d_out, const RoutedRows& rows, const float* h, Factor B, int64_t r,
               LoraIsa isa, int64_t out_stride) {
    isa = usable(isa);
    const int64_t stride = out_stride > 0 ? out_stride : d_out;
    switch (B.type) {
        case FactorType::F32:
            return up<F32Weights>(out, stride, d_out, rows, h, B, r, isa);
        case FactorType::BF16:
            return up<Bf16Weights>(out, stride, d_out, rows, h, B, r, isa);
        case FactorType::F16:
            return up<F16Weights>(out, stride, d_out, rows, h, B, r, isa);
    }
}

}  // namespace phatgoose
