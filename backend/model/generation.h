#pragma once
// Greedy and beam-search decoding with the key/value cache.
#include <cstdint>
#include <vector>

#include "model/t5_model.h"

namespace phatgoose {

// Where generation's time went (for --timings): the encoder pass and every decoding step.
struct GenerationTimings {
    double encode_ms = 0.0;
    int64_t encoded_tokens = 0;   // input positions, padding included
    std::vector<double> step_ms;  // one per decoding step (a beam-search step decodes every beam at once)
};

struct GenerationOptions {
    int64_t max_new_tokens = 32;
    int64_t num_beams = 1;                 // 1 = greedy
    double length_penalty = 1.0;           // beam score = sum log p / length^length_penalty
    GenerationTimings* timings = nullptr;  // filled (added to) when set
    // The inputs' encoder output when the caller already has it ([inputs, longest input, d_model], the
    // padded batch generate() would encode), so that it is not encoded twice; undefined: generate() encodes.
    torch::Tensor encoded;
};

struct Generation {
    std::vector<int64_t> ids;  // generated ids, decoder start token excluded, eos included when reached
    double log_prob = 0.0;     // sum of the chosen tokens' log-probabilities
    double score = 0.0;        // log_prob / length^length_penalty (beam search's ranking)
};

// Validates ids against the model's vocabulary and refuses empty input; `what` names the input in the
// message.
void checkTokenIds(const T5Config& config, const std::vector<int64_t>& ids, const std::string& what);

// One result per input row. Rows are encoded together (padded batch) and decoded together.
std::vector<Generation> generate(T5ModelImpl& model, const std::vector<std::vector<int64_t>>& inputs,
                                 const GenerationOptions& options);

}  // namespace phatgoose
