#pragma once
// y = x W^T for many rows (prefill), with W in its stored dtype (F32, BF16 or F16) and float32 activations
// and accumulation: an AVX-512 matrix product in the BLIS manner. W is read once per call, 32 rows and 256
// columns at a time, widened and transposed into a small packed panel that stays in L1 while every block of
// eight x rows passes over it; x is packed per 256-column block. Two-byte weights are widened on the way
// into that panel, so a BF16 model's prefill costs what a float32 one does (widening the whole matrix first
// and handing it to sgemm wrote and re-read a float32 copy, and sgemm then packed it once more).
// No LibTorch here.
#include <cstdint>

namespace phatgoose {

enum class PackedWeightType { F32, BF16, F16 };

// AVX-512F on this CPU: the only ISA the kernel has (callers keep their other path otherwise).
bool packedGemmAvailable();

// x: [rows, d_in] float32 row-major; w: [d_out, d_in] row-major of `type`; y: [rows, d_out] row-major,
// overwritten. Splits the output columns over the caller and the kernels' helper thread
// (model/weight_kernels.h's runOnTwoThreads). Requires packedGemmAvailable().
void packedGemm(const float* x, int64_t rows, const void* w, PackedWeightType type, int64_t d_in,
                int64_t d_out, float* y);

}  // namespace phatgoose
