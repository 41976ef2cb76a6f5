#include "routing/routing_statistics.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "error.h"

namespace phatgoose {
namespace {

std::vector<double> perToken(const SiteStatistics& s, const auto& sums) {
    std::vector<double> out(sums.size(), 0.0);
    if (s.tokens == 0) return out;
    for (size_t e = 0; e < sums.size(); ++e) out[e] = double(sums[e]) / double(s.tokens);
    return out;
}

SiteStatistics emptySite(const SiteRouting& routing, size_t experts) {
    SiteStatistics s;
    s.site = routing.site;
    s.decoder_tokens = routing.decoder_tokens;
    s.weight_sum.assign(experts, 0.0);
    s.kept.assign(experts, 0);
    s.top1.assign(experts, 0);
    return s;
}

// Row r of a site's recording belongs to batch row r / length, position r % length.
void addSite(const SiteRouting& routing, const std::vector<std::vector<uint8_t>>& mask,
             SiteStatistics& into) {
    if (mask.empty()) return;
    const int64_t length = int64_t(mask.front().size());
    if (routing.tokens != int64_t(mask.size()) * length)
        throw Error("routing statistics: " + routing.site + " recorded " + std::to_string(routing.tokens) +
                    " rows for a batch of " + std::to_string(mask.size()) + " x " + std::to_string(length));
    for (int64_t r = 0; r < routing.tokens; ++r) {
        if (!mask[size_t(r / length)][size_t(r % length)]) continue;
        into.tokens += 1;
        double entropy = 0.0;
        for (int64_t j = 0; j < routing.k; ++j) {
            const size_t at = size_t(r * routing.k + j);
            const size_t e = size_t(routing.experts[at]);
            const double w = routing.weights[at];
            into.weight_sum.at(e) += w;
            into.kept.at(e) += 1;
            if (j == 0) into.top1.at(e) += 1;
            if (w > 0.0) entropy -= w * std::log(w);
        }
        into.entropy_sum += entropy;
    }
}

}  // namespace

std::vector<double> SiteStatistics::meanWeight() const {
    return perToken(*this, weight_sum);
}
std::vector<double> SiteStatistics::keptShare() const {
    return perToken(*this, kept);
}
std::vector<double> SiteStatistics::top1Share() const {
    return perToken(*this, top1);
}

double SiteStatistics::entropy() const {
    return tokens ? entropy_sum / double(tokens) : 0.0;
}

double SiteStatistics::load() const {
    const std::vector<double> share = keptShare();
    if (share.empty()) return 0.0;
    double mean = 0.0;
    for (double v : share) mean += v;
    mean /= double(share.size());
    if (mean <= 0.0) return 0.0;
    double variance = 0.0;
    for (double v : share) variance += (v - mean) * (v - mean);
    return std::sqrt(variance / double(share.size())) / mean;
}

void accumulateTrace(const RoutingTrace& trace, const std::vector<std::vector<uint8_t>>& encoder_mask,
                     const std::vector<std::vector<uint8_t>>& decoder_mask, DatasetRoutingStatistics& into) {
    if (into.sites.empty())
        for (const SiteRouting& s : trace.sites)
            into.sites.push_back(emptySite(s, trace.expert_names.size()));
    if (into.sites.size() != trace.sites.size())
        throw Error("routing statistics: the trace's modules changed between batches");
    for (size_t i = 0; i < trace.sites.size(); ++i) {
        const SiteRouting& s = trace.sites[i];
        if (into.sites[i].site != s.site)
            throw Error("routing statistics: module order changed at " + s.site);
        addSite(s, s.decoder_tokens ? decoder_mask : encoder_mask, into.sites[i]);
    }
}

std::string RoutingStatistics::toJson() const {
    nlohmann::json datasets_json = nlohmann::json::array();
    for (const DatasetRoutingStatistics& d : datasets) {
        nlohmann::json sites = nlohmann::json::array();
        for (const SiteStatistics& s : d.sites)
            sites.push_back({{"site", s.site},
                             {"decoder_tokens", s.decoder_tokens},
                             {"tokens", s.tokens},
                             {"mean_weight", s.meanWeight()},
                             {"kept_share", s.keptShare()},
                             {"top1_share", s.top1Share()},
                             {"entropy", s.entropy()},
                             {"load", s.load()}});
        datasets_json.push_back({{"name", d.name}, {"examples", d.examples}, {"sites", sites}});
    }
    return nlohmann::json{
        {"expert_names", expert_names}, {"method", method}, {"top_k", top_k}, {"datasets", datasets_json}}
        .dump();
}

}  // namespace phatgoose
