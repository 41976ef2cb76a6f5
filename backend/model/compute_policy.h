#pragma once
// How the engine uses the machine's cores and its allocator, set once per process (the CLI before a command,
// the workbench's engine thread when it starts). One policy for the whole forward pass, because on a small
// machine three thread pools competing for the same cores cost more than any kernel gains:
//  - LibTorch runs its element-wise ops on the calling thread (one intra-op thread). Its OpenMP workers spin
//    after each parallel region (GCC's libgomp, OMP_WAIT_POLICY unset) and take the core OpenBLAS's next
//    product needs: measured here, a t5-base encode went from 250 to 860 ms with two intra-op threads.
//  - BLAS products use `threads` threads (OpenBLAS keeps its own pool; LibTorch's setting does not reach it).
//  - The engine's own kernels (two-byte weights, LoRA experts, attention) use a second thread when
//    `threads` >= 2 (model/weight_kernels.h, runOnTwoThreads).
//  - Activations of a forward pass are freed and allocated again by the next layer; glibc would return the
//    top of its heap to the kernel each time (the trim threshold follows the largest freed block) and fault
//    the pages in again, some 16 000 page faults per t5-base encode. A fixed, larger trim threshold keeps
//    them.
namespace phatgoose {

struct ComputeThreads {
    int aten = 1;     // LibTorch intra-op threads
    int blas = 0;     // OpenBLAS threads; 0 when the BLAS is not OpenBLAS (then unknown)
    int kernels = 1;  // threads of the engine's own kernels: 1 or 2
};

// threads <= 0: every core of the machine (what `std::thread::hardware_concurrency` reports).
void applyComputePolicy(int threads);
ComputeThreads computeThreads();

// Whether the engine's own kernels may use their second thread (false after applyComputePolicy(1)).
bool kernelsMayUseTwoThreads();

}  // namespace phatgoose
