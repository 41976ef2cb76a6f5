#pragma once
// Log-likelihood of given targets under teacher forcing, and rank classification over answer choices.
#include <cstdint>
#include <vector>

#include "model/t5_model.h"

namespace phatgoose {

struct TargetScore {
    double sum = 0.0;   // sum of the target tokens' log-probabilities
    double mean = 0.0;  // sum / tokens: the paper's rank-classification score
    int64_t tokens = 0;
};

// One score per (inputs[i], targets[i]) pair, computed as one padded batch. Targets should end with eos.
std::vector<TargetScore> scoreTargets(T5ModelImpl& model, const std::vector<std::vector<int64_t>>& inputs,
                                      const std::vector<std::vector<int64_t>>& targets);

struct RankResult {
    int64_t best = -1;                // index of the choice with the highest mean log-likelihood
    std::vector<TargetScore> scores;  // one per choice
};

// Encodes the input once and scores every choice against it.
RankResult rankChoices(T5ModelImpl& model, const std::vector<int64_t>& input,
                       const std::vector<std::vector<int64_t>>& choices);

}  // namespace phatgoose
