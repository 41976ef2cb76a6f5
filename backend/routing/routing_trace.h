#pragma once
// Which experts every token used at every LoRA module: what the GUI's heatmaps draw and `phatgoose route`
// prints. Plain data (no LibTorch types) so that the UI can hold it.
#include <cstdint>
#include <string>
#include <vector>

namespace phatgoose {

struct SiteRouting {
    std::string site;  // "encoder.block.0.layer.0.SelfAttention.q"
    bool decoder_tokens =
        false;  // rows are decoder positions; else encoder positions (cross-attention k, v too)
    int64_t block = 0;
    std::string kind;                 // "SelfAttention.q", "EncDecAttention.k", "DenseReluDense.wo", ...
    int64_t k = 0;                    // experts kept per token
    int64_t tokens = 0;               // rows recorded so far
    std::vector<int32_t> experts;     // [tokens * k] library indices of the kept experts, best first
    std::vector<float> weights;       // [tokens * k] their routing weights (sum to 1 per token)
    std::vector<float> scores;        // [tokens * candidates] every candidate's score, when recorded
    std::vector<int32_t> candidates;  // library indices of the experts scored at this site
};

struct RoutingTrace {
    std::string method;
    int64_t top_k = 0;
    std::vector<std::string> expert_names;    // library order
    std::vector<std::string> encoder_pieces;  // filled by whoever tokenized the input
    std::vector<std::string> decoder_pieces;  // decoder inputs: start token, then generated tokens
    std::vector<SiteRouting> sites;           // t5LinearSites order, only sites that route
    bool record_scores = true;

    SiteRouting* find(const std::string& site);
    const SiteRouting* find(const std::string& site) const;
    void clearTokens();  // keeps the structure, drops recorded rows
    std::string toJson() const;
    static RoutingTrace fromJson(const std::string& text);
};

}  // namespace phatgoose
