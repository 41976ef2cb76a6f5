#include "ui/probe/routing_difference.h"

#include <algorithm>
#include <iterator>

namespace phatgoose::ui {
namespace {

// Names rather than library indices, so that two traces over differently ordered libraries still compare.
std::vector<std::string> keptNames(const RoutingTrace& trace, const SiteRouting& site, int64_t token) {
    std::vector<std::string> out;
    for (int64_t j = 0; j < site.k; ++j) {
        const int e = site.experts[size_t(token * site.k + j)];
        out.push_back(e >= 0 && e < int(trace.expert_names.size()) ? trace.expert_names[size_t(e)]
                                                                   : "#" + std::to_string(e));
    }
    return out;
}

ModuleDifference compareModule(const RoutingTrace& a, int ia, const RoutingTrace& b, int ib, int64_t tokens) {
    const SiteRouting& sa = a.sites[size_t(ia)];
    const SiteRouting& sb = b.sites[size_t(ib)];
    ModuleDifference m{
        .site = sa.site, .site_index_a = ia, .site_index_b = ib, .decoder_tokens = sa.decoder_tokens};
    tokens = std::min({tokens, sa.tokens, sb.tokens});
    double jaccard_sum = 0;
    int differing = 0;
    for (int64_t t = 0; t < tokens; ++t) {
        const double j = jaccard(keptNames(a, sa, t), keptNames(b, sb, t));
        m.token_difference.push_back(1.0 - j);
        jaccard_sum += j;
        differing += j < 1.0;
    }
    if (tokens > 0) {
        m.mean_jaccard = jaccard_sum / double(tokens);
        m.differing_fraction = double(differing) / double(tokens);
    }
    return m;
}

}  // namespace

double jaccard(std::vector<std::string> a, std::vector<std::string> b) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    if (a.empty() && b.empty()) return 1.0;
    std::vector<std::string> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    return double(both.size()) / double(a.size() + b.size() - both.size());
}

int agreeingDecoderPrefix(const RoutingTrace& a, const RoutingTrace& b) {
    const size_t n = std::min(a.decoder_pieces.size(), b.decoder_pieces.size());
    size_t i = 0;
    while (i < n && a.decoder_pieces[i] == b.decoder_pieces[i]) ++i;
    return int(i);
}

RoutingDifference compareRouting(const RoutingTrace& a, const RoutingTrace& b) {
    RoutingDifference d;
    d.encoder_tokens = int(std::min(a.encoder_pieces.size(), b.encoder_pieces.size()));
    d.decoder_tokens = agreeingDecoderPrefix(a, b);
    d.decoder_tokens_a = int(a.decoder_pieces.size());
    d.decoder_tokens_b = int(b.decoder_pieces.size());
    double jaccard_sum = 0, differing = 0;
    for (size_t ia = 0; ia < a.sites.size(); ++ia) {
        const SiteRouting* sb = b.find(a.sites[ia].site);
        if (!sb) {
            d.only_a.push_back(a.sites[ia].site);
            continue;
        }
        const int ib = int(sb - b.sites.data());
        const int64_t tokens = a.sites[ia].decoder_tokens ? d.decoder_tokens : d.encoder_tokens;
        ModuleDifference m = compareModule(a, int(ia), b, ib, tokens);
        for (double diff : m.token_difference) {
            jaccard_sum += 1.0 - diff;
            differing += diff > 0;
        }
        d.compared_pairs += int64_t(m.token_difference.size());
        d.modules.push_back(std::move(m));
    }
    for (const auto& s : b.sites)
        if (!a.find(s.site)) d.only_b.push_back(s.site);
    if (d.compared_pairs > 0) {
        d.mean_jaccard = jaccard_sum / double(d.compared_pairs);
        d.differing_fraction = differing / double(d.compared_pairs);
    }
    return d;
}

}  // namespace phatgoose::ui
