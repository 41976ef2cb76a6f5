#include "model/compute_policy.h"

#include <dlfcn.h>
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace phatgoose {
namespace {

std::atomic<int> g_kernel_threads{int(std::min(2u, std::max(1u, std::thread::hardware_concurrency())))};

template <typename Signature>
Signature openBlasFunction(const char* name) {
    // Looked up at run time: the BLAS behind Debian's LibTorch is whatever libblas.so.3 the alternatives
    // system points at, OpenBLAS or not.
    return reinterpret_cast<Signature>(dlsym(RTLD_DEFAULT, name));
}

void keepFreedActivations() {
    // 32 MB: a batch-8 T5-XL feed-forward activation still comes from the heap; 256 MB of free heap top is
    // kept before glibc trims it. Setting these turns off glibc's sliding thresholds.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace

void applyComputePolicy(int threads) {
    if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
    at::set_num_threads(1);
    if (auto set = openBlasFunction<void (*)(int)>("openblas_set_num_threads")) set(threads);
    g_kernel_threads = std::min(threads, 2);
    keepFreedActivations();
}

ComputeThreads computeThreads() {
    ComputeThreads t;
    t.aten = at::get_num_threads();
    if (auto get = openBlasFunction<int (*)()>("openblas_get_num_threads")) t.blas = get();
    t.kernels = g_kernel_threads;
    return t;
}

bool kernelsMayUseTwoThreads() {
    return g_kernel_threads >= 2;
}

}  // namespace phatgoose
