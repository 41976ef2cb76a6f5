#include "model/packed_gemm.h"

// GCC 12's AVX-512 intrinsics start their results from _mm512_undefined_ps(), which its own
// -Wmaybe-uninitialized then reports wherever they are inlined (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "model/half_convert.h"
#include "model/weight_kernels.h"

namespace phatgoose {
namespace {

// Register block: 8 rows of x by 32 output columns (16 zmm accumulators); cache blocks: 256 columns of the
// weight's rows (a packed 32-row panel is 32 KB, within L1), 512 output columns per packed weight block
// (512 KB) and 128 rows of x per packed input block (128 KB), both within L2.
constexpr int64_t kMr = 8, kNr = 32, kKc = 256, kNc = 512, kMc = 128;

// 64-byte aligned scratch that grows and is kept per thread.
class AlignedScratch {
public:
    float* get(int64_t floats) {
        if (floats > size_) {
            const size_t bytes = (size_t(floats) * sizeof(float) + 63) / 64 * 64;
            data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
            if (!data_) throw std::bad_alloc();
            size_ = floats;
        }
        return data_.get();
    }

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data_;
    int64_t size_ = 0;
};

// Weight rows [n0, n0 + n) by columns [k0, k0 + kc) into panels of kNr rows: out[panel][k][j] =
// w[n0 + panel * kNr + j][k0 + k] as float32, rows past n zero.
template <class E>
PHATGOOSE_AVX512 void packWeight(const typename E::T* w, int64_t d_in, int64_t n0, int64_t n, int64_t k0,
                                 int64_t kc, float* out) {
    for (int64_t p = 0; p * kNr < n; ++p) {
        float* panel = out + p * kc * kNr;
        for (int64_t g = 0; g < kNr; g += 16) {
            const int64_t first = p * kNr + g, valid = std::clamp<int64_t>(n - first, 0, 16);
            int64_t k = 0;
            for (; k + 16 <= kc; k += 16) {
                __m512 r[16];
                for (int q = 0; q < 16; ++q)
                    r[q] =
                        q < valid ? load16(E{}, w + (n0 + first + q) * d_in + k0 + k) : _mm512_setzero_ps();
                transpose16(r);
                for (int c = 0; c < 16; ++c) _mm512_store_ps(panel + (k + c) * kNr + g, r[c]);
            }
            for (; k < kc; ++k)
                for (int q = 0; q < 16; ++q)
                    panel[k * kNr + g + q] =
                        q < valid ? E::scalar(w + (n0 + first + q) * d_in + k0 + k) : 0.0f;
        }
    }
}

// x's rows by columns [k0, k0 + kc) into blocks of kMr rows: out[block][k][i], rows past `rows` zero.
void packInput(const float* x, int64_t rows, int64_t d_in, int64_t k0, int64_t kc, float* out) {
    for (int64_t b = 0; b * kMr < rows; ++b) {
        float* block = out + b * kc * kMr;
        for (int64_t i = 0; i < kMr; ++i) {
            const int64_t row = b * kMr + i;
            const float* src = x + row * d_in + k0;
            if (row < rows)
                for (int64_t k = 0; k < kc; ++k) block[k * kMr + i] = src[k];
            else
                for (int64_t k = 0; k < kc; ++k) block[k * kMr + i] = 0.0f;
        }
    }
}

// y[0..mr)[0..nr) (+)= a-block x b-panel over kc.
PHATGOOSE_AVX512 void microKernel(int64_t kc, const float* a, const float* b, float* y, int64_t ldy,
                                  int64_t mr, int64_t nr, bool accumulate) {
    __m512 acc[kMr][2];
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 b0 = _mm512_load_ps(b + k * kNr), b1 = _mm512_load_ps(b + k * kNr + 16);
#pragma GCC unroll 8
        for (int i = 0; i < kMr; ++i) {
            const __m512 av = _mm512_set1_ps(a[k * kMr + i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    const __mmask16 m0 = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? __mmask16(0xFFFF) : nr > 16 ? __mmask16((1u << (nr - 16)) - 1) : 0;
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
        if (i >= mr) break;
        float* row = y + i * ldy;
        __m512 v0 = acc[i][0], v1 = acc[i][1];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

// Output columns [n0, n1) of y. Per 256-column block of the weight: a 512-row weight block packed once
// (in L2), then x in blocks of 128 rows (in L2 beside it), each 32-row panel (in L1) meeting every 8-row
// block of x.
template <class E>
void productColumns(const float* x, int64_t rows, const typename E::T* w, int64_t d_in, float* y,
                    int64_t d_out, int64_t n0, int64_t n1) {
    static thread_local AlignedScratch input_scratch, weight_scratch;
    float* packed_x = input_scratch.get((kMc + kMr - 1) / kMr * kMr * kKc);
    float* packed_w = weight_scratch.get(kNc * kKc);
    for (int64_t k0 = 0; k0 < d_in; k0 += kKc) {
        const int64_t kc = std::min(kKc, d_in - k0);
        for (int64_t j0 = n0; j0 < n1; j0 += kNc) {
            const int64_t nc = std::min(kNc, n1 - j0);
            packWeight<E>(w, d_in, j0, nc, k0, kc, packed_w);
            for (int64_t i0 = 0; i0 < rows; i0 += kMc) {
                const int64_t mc = std::min(kMc, rows - i0);
                packInput(x + i0 * d_in, mc, d_in, k0, kc, packed_x);
                for (int64_t p = 0; p * kNr < nc; ++p)
                    for (int64_t b = 0; b * kMr < mc; ++b)
                        microKernel(kc, packed_x + b * kc * kMr, packed_w + p * kc * kNr,
                                    y + (i0 + b * kMr) * d_out + j0 + p * kNr, d_out,
                                    std::min(kMr, mc - b * kMr), std::min(kNr, nc - p * kNr), k0 > 0);
            }
        }
    }
}

template <class E>
void product(const float* x, int64_t rows, const void* w, int64_t d_in, int64_t d_out, float* y) {
    const auto* weights = static_cast<const typename E::T*>(w);
    if (d_in == 0) {
        std::fill(y, y + rows * d_out, 0.0f);
        return;
    }
    runOnTwoThreads(d_out, 2 * kNr, [&](int64_t n0, int64_t n1) {
        productColumns<E>(x, rows, weights, d_in, y, d_out, n0, n1);
    });
}

}  // namespace

bool packedGemmAvailable() {
    return cpuHasAvx512();
}

void packedGemm(const float* x, int64_t rows, const void* w, PackedWeightType type, int64_t d_in,
                int64_t d_out, float* y) {
    if (rows <= 0 || d_out <= 0) return;
    switch (type) {
        case PackedWeightType::F32:
            return product<F32Weights>(x, rows, w, d_in, d_out, y);
        case PackedWeightType::BF16:
            return product<Bf16Weights>(x, rows, w, d_in, d_out, y);
        case PackedWeightType::F16:
            return product<F16Weights>(x, rows, w, d_in, d_out, y);
    }
}

}  // namespace phatgoose
