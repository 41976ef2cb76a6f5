#include "routing/lora_kernels.h"

#include <immintrin.h>

#include <algorithm>

namespace phatgoose {
namespace {

// ---- Portable: plain loops the compiler vectorises (independent lanes, no reordered reductions) ----------

void downPortable(const float* x, int64_t d_in, const RoutedRows& rows, const float* At, int64_t r,
                  float* h) {
    for (int64_t p = 0; p < rows.count; ++p) {
        const float* xt = x + rows.token[p] * d_in;
        float* hp = h + p * r;
        std::fill(hp, hp + r, 0.f);
        for (int64_t c = 0; c < d_in; ++c) {
            const float xc = xt[c];
            const float* a = At + c * r;
            for (int64_t i = 0; i < r; ++i) hp[i] += xc * a[i];
        }
        for (int64_t i = 0; i < r; ++i) hp[i] *= rows.weight[p];
    }
}

void upPortable(float* out, int64_t d_out, const RoutedRows& rows, const float* h, const float* Bt,
                int64_t r) {
    for (int64_t p = 0; p < rows.count; ++p) {
        float* o = out + rows.token[p] * d_out;
        for (int64_t i = 0; i < r; ++i) {
            const float hi = h[p * r + i];
            const float* b = Bt + i * d_out;
            for (int64_t c = 0; c < d_out; ++c) o[c] += hi * b[c];
        }
    }
}

// ---- AVX2 + FMA: blocks of 4 rows x 16 columns, 8 accumulators in registers
// --------------------------------
//
// Each step loads two vectors of the expert's factor and broadcasts one value per row: 6 loads for 8 FMAs,
// which keeps both FMA units busy. Column tails (a rank or width not a multiple of 16) use masked loads
// and stores, so no row is ever read or written past its end.

#define PHATGOOSE_AVX2 __attribute__((target("avx2,fma")))

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

// h[i, :] = w[i] * x_i At for R rows whose inputs start at xr[i]; h rows are r apart.
template <int R>
PHATGOOSE_AVX2 void downBlock(const float* const* xr, const float* w, int64_t d_in, const float* At,
                              int64_t r, float* h) {
    for (int64_t j = 0; j < r; j += 16) {
        const Span16 span = span16(r - j);
        __m256 acc[R][2];
        for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        const float* a = At + j;
        for (int64_t c = 0; c < d_in; ++c, a += r) {
            __m256 a0, a1;
            load16(span, a, a0, a1);
            for (int i = 0; i < R; ++i) {
                const __m256 xc = _mm256_broadcast_ss(xr[i] + c);
                acc[i][0] = _mm256_fmadd_ps(xc, a0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(xc, a1, acc[i][1]);
            }
        }
        for (int i = 0; i < R; ++i) {
            const __m256 wi = _mm256_set1_ps(w[i]);
            store16(span, h + i * r + j, _mm256_mul_ps(acc[i][0], wi), _mm256_mul_ps(acc[i][1], wi));
        }
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

PHATGOOSE_AVX2 void downAvx2(const float* x, int64_t d_in, const RoutedRows& rows, const float* At, int64_t r,
                             float* h) {
    int64_t p = 0;
    for (; p + kBlockRows <= rows.count; p += kBlockRows) {
        const float* xr[kBlockRows];
        for (int i = 0; i < kBlockRows; ++i) xr[i] = x + rows.token[p + i] * d_in;
        downBlock<kBlockRows>(xr, rows.weight + p, d_in, At, r, h + p * r);
    }
    for (; p < rows.count; ++p) {
        const float* xr = x + rows.token[p] * d_in;
        downBlock<1>(&xr, rows.weight + p, d_in, At, r, h + p * r);
    }
}

bool distinct(const int64_t* token, int n) {
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
            if (token[i] == token[j]) return false;
    return true;
}

PHATGOOSE_AVX2 void upAvx2(float* out, int64_t d_out, const RoutedRows& rows, const float* h, const float* Bt,
                           int64_t r) {
    int64_t p = 0;
    for (; p + kBlockRows <= rows.count; p += kBlockRows) {
        // Two rows for one token would each add to a stale copy of that output row: take them one by one.
        if (!distinct(rows.token + p, kBlockRows)) {
            for (int i = 0; i < kBlockRows; ++i) {
                float* o = out + rows.token[p + i] * d_out;
                upBlock<1>(&o, h + (p + i) * r, Bt, r, d_out);
            }
            continue;
        }
        float* orow[kBlockRows];
        for (int i = 0; i < kBlockRows; ++i) orow[i] = out + rows.token[p + i] * d_out;
        upBlock<kBlockRows>(orow, h + p * r, Bt, r, d_out);
    }
    for (; p < rows.count; ++p) {
        float* o = out + rows.token[p] * d_out;
        upBlock<1>(&o, h + p * r, Bt, r, d_out);
    }
}

}  // namespace

LoraIsa bestLoraIsa() {
    static const LoraIsa best =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? LoraIsa::Avx2 : LoraIsa::Portable;
    return best;
}

const char* loraIsaName(LoraIsa isa) {
    return isa == LoraIsa::Avx2 ? "avx2" : "portable";
}

void loraDown(const float* x, int64_t d_in, const RoutedRows& rows, const float* At, int64_t r, float* h,
              LoraIsa isa) {
    if (isa == LoraIsa::Avx2 && bestLoraIsa() == LoraIsa::Avx2) return downAvx2(x, d_in, rows, At, r, h);
    downPortable(x, d_in, rows, At, r, h);
}

void loraUpAdd(float* out, int64_t d_out, const RoutedRows& rows, const float* h, const float* Bt, int64_t r,
               LoraIsa isa) {
    if (isa == LoraIsa::Avx2 && bestLoraIsa() == LoraIsa::Avx2) return upAvx2(out, d_out, rows, h, Bt, r);
    upPortable(out, d_out, rows, h, Bt, r);
}

}  // namespace phatgoose
