#pragma once
// Two-byte weights (BF16 and F16) read as float32: one scalar converter, AVX2 loaders of eight and AVX-512
// loaders of sixteen (with a 16 x 16 register transpose), shared by the base-model products
// (model/weight_kernels.h, model/packed_gemm.h) and the LoRA kernels (routing/lora_kernels.h). No LibTorch
// here: c10's half types are header-only.
#include <immintrin.h>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cstdint>

namespace phatgoose {

// The element types a stored weight may have, as kernel template tags.
struct F32Weights {
    using T = float;
    static float scalar(const T* p) { return *p; }
};
struct Bf16Weights {
    using T = uint16_t;
    static float scalar(const T* p) {
        // BF16 is the high half of a float32: widening is a shift.
        return c10::detail::f32_from_bits(*p);
    }
};
struct F16Weights {
    using T = uint16_t;
    static float scalar(const T* p) { return c10::detail::fp16_ieee_to_fp32_value(*p); }
};

// sum_c w[c] x[c] with w widened to float32, in eight partial sums: one running float sum is a serial chain
// the compiler may not reorder, eight independent lanes it turns into one vector register.
template <class E>
float dotWidened(const float* x, const typename E::T* w, int64_t n) {
    float lane[8] = {};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int l = 0; l < 8; ++l) lane[l] += E::scalar(w + c + l) * x[c + l];
    float total = 0;
    for (; c < n; ++c) total += E::scalar(w + c) * x[c];
    for (float v : lane) total += v;
    return total;
}

#define PHATGOOSE_AVX2 __attribute__((target("avx2,fma,f16c")))

// Eight consecutive weights as float32 lanes.
PHATGOOSE_AVX2 inline __m256 load8(F32Weights, const float* p) {
    return _mm256_loadu_ps(p);
}
PHATGOOSE_AVX2 inline __m256 load8(Bf16Weights, const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
PHATGOOSE_AVX2 inline __m256 load8(F16Weights, const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The sum of the eight lanes.
PHATGOOSE_AVX2 inline float laneTotal(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define PHATGOOSE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

// Sixteen consecutive weights as float32 lanes.
PHATGOOSE_AVX512 inline __m512 load16(F32Weights, const float* p) {
    return _mm512_loadu_ps(p);
}
PHATGOOSE_AVX512 inline __m512 load16(Bf16Weights, const uint16_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
PHATGOOSE_AVX512 inline __m512 load16(F16Weights, const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Sixteen rows of sixteen floats become their columns, in place (for packing a weight's rows and for
// the LoRA up product's rows of B).
PHATGOOSE_AVX512 inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);  // a0 b0 a1 b1 per 128-bit lane
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // four rows' elements together: u[4i + j] holds element j of each lane
        const __m512d lo = _mm512_castps_pd(t[4 * i]), hi = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d lo2 = _mm512_castps_pd(t[4 * i + 2]), hi2 = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, lo2));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, lo2));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi, hi2));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi, hi2));
    }
    for (int j = 0; j < 4; ++j) {  // element j (+4, +8, +12) of rows 0-3, 4-7, 8-11, 12-15
        const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[j + 4] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[j + 12] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

// AVX2, FMA and F16C: what the vector paths need.
inline bool cpuHasAvx2Fma() {
    static const bool has =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return has;
}

// AVX-512 F, BW and VL besides: what the 16-lane paths need.
inline bool cpuHasAvx512() {
    static const bool has = cpuHasAvx2Fma() && __builtin_cpu_supports("avx512f") &&
                            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    return has;
}

}  // namespace phatgoose
