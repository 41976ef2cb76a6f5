#pragma once
// Routing over whole datasets: per dataset x routed module x expert, how much weight the router gave each
// expert, how often it kept it and how often it was the top choice, and per dataset x module the routing's
// entropy and load. Plain data (no LibTorch) so that the results store and the UI can hold it; collected by
// routing/routing_analysis.h.
#include <cstdint>
#include <string>
#include <vector>

#include "routing/routing_trace.h"

namespace phatgoose {

// Sums over the real (non-pad) tokens of one dataset at one routed module. Vectors are [experts], library
// order; a token's weight vector has 0 for the experts it did not keep.
struct SiteStatistics {
    std::string site;  // "encoder.block.0.layer.0.SelfAttention.q", as in RoutingTrace
    bool decoder_tokens = false;
    int64_t tokens = 0;
    std::vector<double> weight_sum;  // sum over tokens of the expert's routing weight
    std::vector<int64_t> kept;       // tokens that kept the expert
    std::vector<int64_t> top1;       // tokens whose first choice it was
    double entropy_sum = 0.0;        // sum over tokens of -sum_e w_e ln w_e (nats)

    std::vector<double> meanWeight() const;  // weight_sum / tokens
    std::vector<double> keptShare() const;   // kept / tokens
    std::vector<double> top1Share() const;   // top1 / tokens
    double entropy() const;                  // mean per-token entropy, nats
    // How unevenly the experts carry the tokens: the coefficient of variation (standard deviation over
    // mean) of the experts' kept shares; 0 when every expert is kept equally often.
    double load() const;
};

struct DatasetRoutingStatistics {
    std::string name;
    int64_t examples = 0;
    std::vector<SiteStatistics> sites;  // the trace's site order
};

struct RoutingStatistics {
    std::string method;
    int64_t top_k = 0;
    std::vector<std::string> expert_names;  // library order, as the trace's
    std::vector<DatasetRoutingStatistics> datasets;

    // {"expert_names", "method", "top_k", "datasets": [{"name", "examples", "sites": [{"site",
    // "decoder_tokens", "tokens", "mean_weight", "kept_share", "top1_share", "entropy", "load"}]}]}
    std::string toJson() const;
};

// Adds a batch's recorded rows to `into`: rows are [batch x encoder length] for encoder-token sites and
// [batch x decoder length] for decoder-token sites, row-major, and only rows whose mask entry is 1 count.
// `into.sites` is made from the trace's sites on first use and must match them afterwards.
void accumulateTrace(const RoutingTrace& trace, const std::vector<std::vector<uint8_t>>& encoder_mask,
                     const std::vector<std::vector<uint8_t>>& decoder_mask, DatasetRoutingStatistics& into);

}  // namespace phatgoose
