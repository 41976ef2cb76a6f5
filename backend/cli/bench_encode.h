#pragma once
// One prompt's encoder pass (batch 1, 128 tokens) on two published T5 shapes, as a fraction of the machine's
// sgemm rate and of the time its own matrix products take alone; and the CLI's start-up time.
#include <nlohmann/json.hpp>
#include <string>

namespace phatgoose {

// Keys suffixed _small (flan-t5-small: 512, 8 layers, gated-gelu) and _base (t5-base: 768, 12 layers, relu):
// encode_b1_128_ms (best of `rounds`, as gemm_gflops is), encode_b1_128_gflops, encode_b1_fraction_of_gemm
// (against `gemm_gflops`), encode_b1_matmuls_ms, encode_b1_vs_its_matmuls.
nlohmann::json encodeBatchOneBench(double gemm_gflops, int rounds);

// Encodes 128 tokens `passes` times on the shape "small" or "base", for a profiler to watch.
void encodeLoop(const std::string& shape, int passes);

// Wall milliseconds of `phatgoose --version` (this binary), median of `runs`.
double cliStartupMs(int runs);

}  // namespace phatgoose
