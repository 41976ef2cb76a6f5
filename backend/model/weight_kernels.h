#pragma once
// x W^T with W kept in its stored dtype (F32, BF16 or F16) and float32 activations and accumulation: the
// one place every linear layer, the LM head and the router scores multiply by a weight matrix.
#include <torch/torch.h>

#include <functional>

namespace phatgoose {

enum class KernelIsa { Portable, Avx2 };
KernelIsa bestKernelIsa();  // Avx2 where the CPU has AVX2, FMA and F16C

// x: [..., d_in] float32; weight: [d_out, d_in] F32, BF16 or F16, contiguous. Returns float32 [..., d_out].
// F32 weights go to BLAS (sgemv for one or two rows, sgemm otherwise). Two-byte weights: one or two rows
// stream the weight once and convert in registers (decoding reads half the bytes of F32); up to 512 rows go
// to the packed AVX-512 product (model/packed_gemm.h), which widens the weight panel by panel; more rows, or
// a CPU without AVX-512, convert the weight tile by tile into a float32 buffer and call sgemm on each tile.
// With autograd (x needs gradients) a two-byte weight is widened for that call, so training through it works.
torch::Tensor linearProduct(const torch::Tensor& x, const torch::Tensor& weight);

// The two paths for two-byte weights on their own, for tests: `x2` [rows, d_in] float32 contiguous.
torch::Tensor halfRowsProduct(const torch::Tensor& x2, const torch::Tensor& weight,
                              KernelIsa isa = bestKernelIsa());
torch::Tensor halfTiledProduct(const torch::Tensor& x2, const torch::Tensor& weight,
                               KernelIsa isa = bestKernelIsa());

// Many rows through the AVX-512 packed product (model/packed_gemm.h), any of the three weight dtypes:
// `x2` [rows, d_in] float32 contiguous, `weight` [d_out, d_in] contiguous. Requires packedGemmAvailable().
torch::Tensor packedProduct(const torch::Tensor& x2, const torch::Tensor& weight);

// Runs fn(begin, end) over [0, n) on two threads (the caller and the kernels' helper thread), split at a
// multiple of `grain`; all on the caller when n is under two grains or the helper is busy. Waking the
// helper costs some 10-20 us: worth it for prefill-sized work, not for one decoding row.
void runOnTwoThreads(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Rows [row0, row0 + rows) of a two-byte weight as float32 into `out` ([rows, d_in] contiguous).
void widenRows(const torch::Tensor& weight, int64_t row0, int64_t rows, float* out,
               KernelIsa isa = bestKernelIsa());

}  // namespace phatgoose
