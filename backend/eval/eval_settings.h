#pragma once
// What an evaluation runs: the routing methods (each a RoutingSpec under the label the user gave it) and the
// batch settings. No LibTorch here: the workbench's New evaluation dialog reads the defaults.
#include <cstdint>
#include <string>
#include <vector>

#include "routing/routing_methods.h"
#include "tokenizer/tokenizer.h"

namespace phatgoose {

struct EvalMethod {
    std::string label;  // as the user wrote it: "phatgoose", "single:qa"
    RoutingSpec spec;
};

// Parses "phatgoose,merge,single:qa". Throws phatgoose::Error on an empty list, an unknown method, a
// `single` without an expert name, or a repeated entry.
std::vector<EvalMethod> parseEvalMethods(const std::string& list, int64_t top_k);

struct EvalSettings {
    std::vector<EvalMethod> methods;
    int64_t batch_size = 16;      // examples per forward pass
    int64_t max_new_tokens = 32;  // generation (exact match) examples
    int64_t max_input_tokens =
        kDefaultMaxInputTokens;  // longer inputs are cut (eos kept), counted per dataset
};

}  // namespace phatgoose
