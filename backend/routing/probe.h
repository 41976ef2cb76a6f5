#pragma once
// One prompt through one routing method: the generated text and the full routing trace, with the token
// pieces filled in. What `phatgoose route` prints and the workbench's probe view draws.
#include <string>
#include <vector>

#include "model/generation.h"
#include "model/t5_loader.h"
#include "routing/router.h"
#include "tokenizer/tokenizer.h"

namespace phatgoose {

struct ProbeOutcome {
    std::string output;
    RoutingTrace trace;
    std::vector<std::string> warnings;  // for the user: the prompt was cut, experts were left out
    double tokenize_ms = 0.0;
    GenerationTimings timings;
};

// Greedy decoding under `router` (already attached to t5's model; its trace records). A prompt longer than
// `max_input_tokens` is cut (eos kept), with a warning.
ProbeOutcome probeWithRouter(PretrainedT5& t5, Router& router, const std::string& prompt,
                             int64_t max_new_tokens, int64_t max_input_tokens = kDefaultMaxInputTokens);

// Builds the router from `spec` (record_trace and record_scores forced on), probes, and detaches it. The
// router's warnings join the outcome's.
ProbeOutcome probePrompt(PretrainedT5& t5, const std::vector<LoraExpert>& experts, RoutingSpec spec,
                         const std::string& prompt, int64_t max_new_tokens,
                         const ExpertExamples* examples = nullptr,
                         int64_t max_input_tokens = kDefaultMaxInputTokens);

}  // namespace phatgoose
