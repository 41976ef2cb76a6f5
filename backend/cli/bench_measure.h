#pragma once
// What both benchmarks measure: wall times (best of several), this process's memory, the machine's own
// ceilings (sgemm rate, memory bandwidth) and a model's decoding step, so that every figure can be reported
// as a ratio measured in the same run.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <string>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "model/t5_model.h"

namespace phatgoose {

using BenchClock = std::chrono::steady_clock;

template <typename F>
double bestSeconds(int reps, F&& f) {
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        auto t0 = BenchClock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(BenchClock::now() - t0).count());
    }
    return best;
}

double procStatusMb(const std::string& key);  // "VmRSS", "VmHWM" of this process, in MB (MiB / 1.024^2)
double gemmGflops();                          // float32 sgemm 1024^3
double copyBandwidthGbs();                    // bytes read + written per second copying 256 MB
double readBandwidthGbs();                    // bytes read per second summing 512 MB on two threads

// The bytes one decoding step must read: every decoder weight in its held dtype except the
// cross-attention's k and v (their outputs are cached once per input), plus the LM head's matrix.
int64_t decoderReadBytes(const T5ModelImpl& m);

struct DecodeTiming {
    double pos16_ms, pos128_ms;
};
// Greedy decoding ms per token at positions 16 and 128, after encoding 128 random tokens: each position is
// reached by one teacher-forced pass over the prefix, then `steps` single-token steps (argmax included, as a
// real greedy step) are timed and the fastest kept.
DecodeTiming decodeTiming(T5ModelImpl& m, int steps = 8);

// Seconds for one encoder pass over `batch` x 128 random tokens (best of `reps`, after one warm-up pass).
double prefillSeconds(T5ModelImpl& m, int64_t batch, int reps);

// Peak resident memory and times of opening a model folder (and an expert library, when given) in a process
// that does nothing else: this binary re-run with the hidden --load-peak-rss option, so that the
// benchmark's own allocations do not count. JSON: weights_mb, model_open_s, rss_before_load_mb, peak_rss_mb,
// and library_open_s, library_mb, library_experts with a library.
// `cache_dir`, when given, is the child's PHATGOOSE_CACHE_DIR (its own ledger of checked weight files).
nlohmann::json openInFreshProcess(const std::filesystem::path& model_dir,
                                  const std::filesystem::path& library_dir = {},
                                  const std::filesystem::path& cache_dir = {});
// Drops the page-cache pages of every file under `dir` (written back first), so that the next read comes
// from the disk: a cold open measured without root.
void evictFromPageCache(const std::filesystem::path& dir);
// The other side: what the re-run binary does.
void runOpenMeasurement(CommandContext& ctx);

}  // namespace phatgoose
