#pragma once
// The two products that apply one LoRA expert to the tokens routed to it, with the gather of those tokens'
// inputs and the scatter-add into their outputs fused in. Token-wise routing sends each expert about
// tokens * k / N rows (some 30 at prefill, one while decoding): far too few for a BLAS call to amortise its
// packing, so these are written for exactly this shape (any rank; AVX2 + FMA where the CPU has it, plain
// loops otherwise). Plain pointers, no LibTorch: the caller owns every buffer.
#include <cstdint>

namespace phatgoose {

// The rows routed to one expert: the token each row reads and writes, and its routing weight.
struct RoutedRows {
    const int64_t* token;  // [count]
    const float* weight;   // [count]
    int64_t count;
};

enum class LoraIsa { Portable, Avx2 };
LoraIsa bestLoraIsa();  // Avx2 where the CPU has AVX2 and FMA
const char* loraIsaName(LoraIsa isa);

// h[p, :] = weight[p] * (x[token[p], :] A^T) for every row p.
// x: [tokens, d_in]; At: [d_in, r] (A transposed); h: [count, r]. All row-major and contiguous.
void loraDown(const float* x, int64_t d_in, const RoutedRows& rows, const float* At, int64_t r, float* h,
              LoraIsa isa = bestLoraIsa());

// out[token[p], :] += h[p, :] B^T for every row p; rows may share a token.
// h: [count, r]; Bt: [r, d_out] (B transposed, scale folded in); out: [tokens, d_out].
void loraUpAdd(float* out, int64_t d_out, const RoutedRows& rows, const float* h, const float* Bt, int64_t r,
               LoraIsa isa = bestLoraIsa());

}  // namespace phatgoose
