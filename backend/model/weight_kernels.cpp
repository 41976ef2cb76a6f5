#include "model/weight_kernels.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "error.h"
#include "model/compute_policy.h"
#include "model/half_convert.h"
#include "model/packed_gemm.h"

namespace phatgoose {
namespace {

// A second thread for the engine's kernels. LibTorch runs one intra-op thread (model/compute_policy.h)
// while OpenBLAS keeps its own pool, so at::parallel_for would leave half of the memory bandwidth and
// of the conversion throughput to sgemm alone. One helper, woken per call: the caller takes one half of
// the range, the helper the other. A second caller while it is busy simply runs its range alone.
class HelperThread {
public:
    static HelperThread& instance() {
        static HelperThread helper;
        return helper;
    }

    template <typename F>
    void split(int64_t n, int64_t grain, F&& fn) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy || n < 2 * grain || !thread_.joinable() || !kernelsMayUseTwoThreads())
            return fn(int64_t(0), n);
        const int64_t half = (n / 2 + grain - 1) / grain * grain;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = [&fn, half, n] { fn(half, n); };
            done_ = false;
        }
        wake_.notify_one();
        fn(int64_t(0), half);
        std::unique_lock<std::mutex> lock(mutex_);
        finished_.wait(lock, [this] { return done_; });
    }

    ~HelperThread() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        wake_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

private:
    HelperThread() {
        if (std::thread::hardware_concurrency() >= 2) thread_ = std::thread([this] { run(); });
    }
    void run() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            wake_.wait(lock, [this] { return stop_ || job_; });
            if (stop_) return;
            auto job = std::move(job_);
            job_ = nullptr;
            lock.unlock();
            job();
            lock.lock();
            done_ = true;
            finished_.notify_one();
        }
    }
    std::mutex busy_, mutex_;
    std::condition_variable wake_, finished_;
    std::function<void()> job_;
    bool done_ = true, stop_ = false;
    std::thread thread_;
};

// ---- One or two rows: each output is a dot product over the streamed weight row --------------------------

template <class E>
void dotRowsPortable(const float* x, int64_t rows, const typename E::T* w, int64_t d_in, float* y,
                     int64_t d_out, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
        const typename E::T* wo = w + o * d_in;
        for (int64_t r = 0; r < rows; ++r) y[r * d_out + o] = dotWidened<E>(x + r * d_in, wo, d_in);
    }
}

// Four outputs at a time, R (1 or 2) input rows: 4R independent FMA chains keep the loads streaming.
template <class E, int R>
PHATGOOSE_AVX2 void dotRowsAvx2(const float* x, const typename E::T* w, int64_t d_in, float* y, int64_t d_out,
                                int64_t o0, int64_t o1) {
    const int64_t body = d_in / 8 * 8;
    int64_t o = o0;
    for (; o + 4 <= o1; o += 4) {
        __m256 acc[4][R];
        for (auto& a : acc)
            for (auto& v : a) v = _mm256_setzero_ps();
        const typename E::T* wo = w + o * d_in;
        for (int64_t c = 0; c < body; c += 8) {
            __m256 xv[R];
            for (int r = 0; r < R; ++r) xv[r] = _mm256_loadu_ps(x + r * d_in + c);
            for (int i = 0; i < 4; ++i) {
                const __m256 wv = load8(E(), wo + i * d_in + c);
                for (int r = 0; r < R; ++r) acc[i][r] = _mm256_fmadd_ps(wv, xv[r], acc[i][r]);
            }
        }
        for (int i = 0; i < 4; ++i)
            for (int r = 0; r < R; ++r) {
                float total = laneTotal(acc[i][r]);
                for (int64_t c = body; c < d_in; ++c) total += E::scalar(wo + i * d_in + c) * x[r * d_in + c];
                y[r * d_out + o + i] = total;
            }
    }
    for (; o < o1; ++o) dotRowsPortable<E>(x, R, w, d_in, y, d_out, o, o + 1);  // the last outputs
}

template <class E>
void dotRows(const float* x, int64_t rows, const typename E::T* w, int64_t d_in, float* y, int64_t d_out,
             KernelIsa isa) {
    // Split the outputs between two threads; 64 rows (the router keys of a 166-expert library are 166)
    // is enough work to be worth waking the second.
    HelperThread::instance().split(d_out, 64, [&](int64_t o0, int64_t o1) {
        if (isa == KernelIsa::Avx2 && rows == 1) return dotRowsAvx2<E, 1>(x, w, d_in, y, d_out, o0, o1);
        if (isa == KernelIsa::Avx2 && rows == 2) return dotRowsAvx2<E, 2>(x, w, d_in, y, d_out, o0, o1);
        dotRowsPortable<E>(x, rows, w, d_in, y, d_out, o0, o1);
    });
}

// ---- Widening rows into a float32 buffer ----------------------------------------------------------------

template <class E>
void widenPortable(const typename E::T* w, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = E::scalar(w + i);
}

template <class E>
PHATGOOSE_AVX2 void widenAvx2(const typename E::T* w, int64_t n, float* out) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8(E(), w + i));
    for (; i < n; ++i) out[i] = E::scalar(w + i);
}

template <class E>
void widen(const typename E::T* w, int64_t n, float* out, KernelIsa isa) {
    HelperThread::instance().split(n, 1 << 15, [&](int64_t b, int64_t e) {
        if (isa == KernelIsa::Avx2) return widenAvx2<E>(w + b, e - b, out + b);
        widenPortable<E>(w + b, e - b, out + b);
    });
}

constexpr int64_t kTileFloats = int64_t(1) << 23;
constexpr int64_t kPackedRowsLimit = 512;

bool isHalf(const torch::Tensor& weight) {
    return weight.scalar_type() == torch::kBFloat16 || weight.scalar_type() == torch::kHalf;
}

void checkHalfOperands(const torch::Tensor& x2, const torch::Tensor& weight) {
    if (!isHalf(weight) || weight.dim() != 2 || !weight.is_contiguous())
        throw Error("linear product: the weight must be a contiguous 2-D BF16 or F16 matrix");
    if (x2.scalar_type() != torch::kFloat || x2.dim() != 2 || !x2.is_contiguous() ||
        x2.size(1) != weight.size(1))
        throw Error("linear product: the input must be contiguous float32 [rows, d_in] matching the weight");
}

const uint16_t* halfData(const torch::Tensor& weight) {
    return static_cast<const uint16_t*>(weight.data_ptr());
}

}  // namespace

void runOnTwoThreads(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    HelperThread::instance().split(n, grain, fn);
}

KernelIsa bestKernelIsa() {
    return cpuHasAvx2Fma() ? KernelIsa::Avx2 : KernelIsa::Portable;
}

void widenRows(const torch::Tensor& weight, int64_t row0, int64_t rows, float* out, KernelIsa isa) {
    if (isa == KernelIsa::Avx2 && !cpuHasAvx2Fma()) isa = KernelIsa::Portable;
    const int64_t d_in = weight.size(1);
    const uint16_t* w = halfData(weight) + row0 * d_in;
    if (weight.scalar_type() == torch::kBFloat16) return widen<Bf16Weights>(w, rows * d_in, out, isa);
    widen<F16Weights>(w, rows * d_in, out, isa);
}

torch::Tensor halfRowsProduct(const torch::Tensor& x2, const torch::Tensor& weight, KernelIsa isa) {
    checkHalfOperands(x2, weight);
    if (isa == KernelIsa::Avx2 && !cpuHasAvx2Fma()) isa = KernelIsa::Portable;
    const int64_t rows = x2.size(0), d_in = weight.size(1), d_out = weight.size(0);
    torch::Tensor y = torch::empty({rows, d_out});
    // Rows are taken two at a time: each pair streams the weight once.
    for (int64_t r = 0; r < rows; r += 2) {
        const int64_t n = std::min<int64_t>(2, rows - r);
        const float* x = x2.data_ptr<float>() + r * d_in;
        float* out = y.data_ptr<float>() + r * d_out;
        if (weight.scalar_type() == torch::kBFloat16)
            dotRows<Bf16Weights>(x, n, halfData(weight), d_in, out, d_out, isa);
        else
            dotRows<F16Weights>(x, n, halfData(weight), d_in, out, d_out, isa);
    }
    return y;
}

torch::Tensor halfTiledProduct(const torch::Tensor& x2, const torch::Tensor& weight, KernelIsa isa) {
    checkHalfOperands(x2, weight);
    const int64_t rows = x2.size(0), d_in = weight.size(1), d_out = weight.size(0);
    // Measured: sgemm's per-call cost outweighs cache reuse here, so tiles are large (32 MB of float32: a
    // whole T5-XL feed-forward matrix is two); only the vocabulary matrix is cut into several.
    const int64_t tile_rows = std::clamp<int64_t>(kTileFloats / std::max<int64_t>(d_in, 1), 16, d_out);
    torch::Tensor tile = torch::empty({std::min(tile_rows, d_out), d_in});
    torch::Tensor y = torch::empty({rows, d_out});
    torch::Tensor part = torch::empty({rows, std::min(tile_rows, d_out)});
    for (int64_t o = 0; o < d_out; o += tile_rows) {
        const int64_t n = std::min(tile_rows, d_out - o);
        torch::Tensor t = tile.narrow(0, 0, n);
        widenRows(weight, o, n, t.data_ptr<float>(), isa);
        // The product lands in a contiguous buffer (sgemm's output) and is copied into its columns of y.
        const torch::Tensor p = n == part.size(1) ? torch::mm_out(part, x2, t.t()) : torch::mm(x2, t.t());
        y.narrow(1, o, n).copy_(p);
    }
    return y;
}

torch::Tensor packedProduct(const torch::Tensor& x2, const torch::Tensor& weight) {
    if (!packedGemmAvailable()) throw Error("linear product: the packed product needs AVX-512");
    if (weight.dim() != 2 || !weight.is_contiguous())
        throw Error("linear product: the weight must be a contiguous 2-D matrix");
    if (x2.scalar_type() != torch::kFloat || x2.dim() != 2 || !x2.is_contiguous() ||
        x2.size(1) != weight.size(1))
        throw Error("linear product: the input must be contiguous float32 [rows, d_in] matching the weight");
    const PackedWeightType type = weight.scalar_type() == torch::kBFloat16 ? PackedWeightType::BF16
                                  : weight.scalar_type() == torch::kHalf   ? PackedWeightType::F16
                                  : weight.scalar_type() == torch::kFloat
                                      ? PackedWeightType::F32
                                      : throw Error("linear product: weights are F32, BF16 or F16");
    torch::Tensor y = torch::empty({x2.size(0), weight.size(0)});
    packedGemm(x2.data_ptr<float>(), x2.size(0), weight.data_ptr(), type, weight.size(1), weight.size(0),
               y.data_ptr<float>());
    return y;
}

torch::Tensor linearProduct(const torch::Tensor& x, const torch::Tensor& weight) {
    const int64_t d_in = x.size(-1);
    const int64_t rows = d_in == 0 ? 0 : x.numel() / d_in;
    const bool half = isHalf(weight);
    if (half && (x.requires_grad() || rows == 0 || x.scalar_type() != torch::kFloat))
        return torch::linear(x, weight.to(x.scalar_type()));
    // A prompt's rows times a two-byte weight: the packed AVX-512 product widens the weight panel by panel
    // on its way into the kernel, 0.85-0.95 of float32 sgemm's rate at 128 rows where widening whole tiles
    // for sgemm reached 0.5. From some 512 rows on, sgemm's better kernel outweighs the widened tile's
    // extra pass (at 1024 rows: tiles 0.9, packed 0.75), so batches keep the tiles. F32 weights stay with
    // sgemm: measured, the packed kernel only matches it there, and its helper thread then competes with
    // OpenBLAS's spinning pool after the attention's products.
    const bool packed = half && rows > 2 && rows <= kPackedRowsLimit && packedGemmAvailable();
    if (!half && (rows == 0 || rows > 2)) return torch::linear(x, weight);
    std::vector<int64_t> out_shape = x.sizes().vec();
    out_shape.back() = weight.size(0);
    torch::Tensor flat = x.reshape({rows, d_in});
    if (packed) {
        flat = flat.contiguous();
        return packedProduct(flat, weight.is_contiguous() ? weight : weight.contiguous()).view(out_shape);
    }
    if (half) {
        flat = flat.contiguous();
        torch::Tensor w = weight.is_contiguous() ? weight : weight.contiguous();
        return (rows <= 2 ? halfRowsProduct(flat, w) : halfTiledProduct(flat, w)).view(out_shape);
    }
    // OpenBLAS's sgemm is 3-5x slower than its sgemv when only one or two rows multiply a weight matrix
    // (measured on this machine), and one-token decoding is exactly that case.
    if (rows == 1) return torch::mv(weight, flat[0]).view(out_shape);
    return torch::stack({torch::mv(weight, flat[0]), torch::mv(weight, flat[1])}).view(out_shape);
}

}  // namespace phatgoose
