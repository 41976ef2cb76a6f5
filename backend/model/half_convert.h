#pragma once
// Two-byte weights (BF16 and F16) read as float32: one scalar converter and one AVX2 loader of eight, shared
// by the base-model products (model/weight_kernels.h) and the LoRA kernels (routing/lora_kernels.h). No
// LibTorch here: c10's half types are header-only.
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

// AVX2, FMA and F16C: what the vector paths need.
inline bool cpuHasAvx2Fma() {
    static const bool has =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return has;
}

}  // namespace phatgoose
