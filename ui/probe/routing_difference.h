#pragma once
// Where two routings of one prompt differ: per module and token, 1 - Jaccard of the two kept expert sets.
// Encoder positions always correspond; a decoder position is compared only while both generations agree on
// every decoder input up to it (after the first different token the two runs read different text).
// Modules that route in one trace only (merge and base record no routing) are listed, not compared.
#include <string>
#include <vector>

#include "routing/routing_trace.h"

namespace phatgoose::ui {

struct ModuleDifference {
    std::string site;
    int site_index_a = 0, site_index_b = 0;  // into each trace's sites
    bool decoder_tokens = false;
    std::vector<double> token_difference;  // 1 - Jaccard per compared token
    double differing_fraction = 0;         // tokens whose kept sets differ / compared tokens
    double mean_jaccard = 1;
};

struct RoutingDifference {
    std::vector<ModuleDifference> modules;  // trace A's order, modules routed in both
    std::vector<std::string> only_a, only_b;
    int encoder_tokens = 0;  // compared encoder positions
    int decoder_tokens = 0;  // compared decoder positions (the agreeing prefix)
    int decoder_tokens_a = 0, decoder_tokens_b = 0;
    double mean_jaccard = 1;        // over every compared (module, token) pair
    double differing_fraction = 0;  // of those pairs, the share whose kept sets differ
    int64_t compared_pairs = 0;
};

// |A ∩ B| / |A ∪ B| of expert names; two empty sets count as equal (1).
double jaccard(std::vector<std::string> a, std::vector<std::string> b);
// Leading decoder positions whose inputs (start token, then generated tokens) are the same in both traces.
int agreeingDecoderPrefix(const RoutingTrace& a, const RoutingTrace& b);
RoutingDifference compareRouting(const RoutingTrace& a, const RoutingTrace& b);

}  // namespace phatgoose::ui
