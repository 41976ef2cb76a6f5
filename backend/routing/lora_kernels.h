#pragma once
// The two products that apply one LoRA expert to the tokens routed to it, with the gather of those tokens'
// inputs and the scatter-add into their outputs fused in. Token-wise routing sends each expert about
// tokens * k / N rows (some 30 at prefill, one while decoding): far too few for a BLAS call to amortise its
// packing, so these are written for exactly this shape (any rank; AVX2 + FMA where the CPU has it, plain
// loops otherwise). The factors are read as the library stores them (PEFT layout, F32, BF16 or F16, two-byte
// values widened in registers), so a library is never copied or widened for routing. Plain pointers, no
// LibTorch: the caller owns every buffer.
#include <cstdint>

namespace phatgoose {

// The rows routed to one expert: the token each row reads and writes, and its routing weight.
struct RoutedRows {
    const int64_t* token;  // [count]
    const float* weight;   // [count]
    int64_t count;
};

enum class FactorType { F32, BF16, F16 };

// A LoRA factor as stored: row-major, contiguous.
struct Factor {
    const void* data;
    FactorType type;
};

enum class LoraIsa { Portable, Avx2 };
LoraIsa bestLoraIsa();  // Avx2 where the CPU has AVX2, FMA and F16C
const char* loraIsaName(LoraIsa isa);

// h[p, :] = weight[p] * (A x[token[p], :]) for every row p.
// x: [tokens, d_in] float32; A: [r, d_in]; h: [count, r] float32.
void loraDown(const float* x, int64_t d_in, const RoutedRows& rows, Factor A, int64_t r, float* h,
              LoraIsa isa = bestLoraIsa());

// out[token[p], :] += B h[p, :] for every row p; rows may share a token.
// h: [count, r] float32; B: [d_out, r]; out: [tokens, out_stride] float32, of which the first d_out columns
// are written (out_stride 0: d_out). A column block [c0, c1) of a wider output is out + c0, B's rows from
// c0, d_out = c1 - c0 and out_stride the full width: what lets two threads share one product.
void loraUpAdd(float* out, int64_t d_out, const RoutedRows& rows, const float* h, Factor B, int64_t r,
               LoraIsa isa = bestLoraIsa(), int64_t out_stride = 0);

// Bytes of one element of a factor.
int64_t factorElementSize(FactorType type);
// The factor from row `row` on (rows of `width` elements).
Factor factorRows(Factor f, int64_t row, int64_t width);

}  // namespace phatgoose
