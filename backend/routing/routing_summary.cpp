#include "routing/routing_summary.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "error.h"

namespace phatgoose {

SiteAddress parseSiteName(const std::string& site) {
    // stack "." "block" "." N "." "layer" "." L "." Sub "." leaf
    std::vector<std::string> parts;
    std::stringstream in(site);
    for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
    const bool known_stack = !parts.empty() && (parts[0] == "encoder" || parts[0] == "decoder");
    if (parts.size() != 7 || !known_stack || parts[1] != "block" || parts[3] != "layer")
        throw Error("routing statistics: '" + site + "' is not a routed module's name");
    SiteAddress a;
    a.decoder = parts[0] == "decoder";
    try {
        size_t used = 0;
        a.block = std::stoll(parts[2], &used);
        if (used != parts[2].size() || a.block < 0) throw std::invalid_argument(parts[2]);
    } catch (const std::exception&) {
        throw Error("routing statistics: '" + site + "' has no block number");
    }
    a.kind = parts[5] + "." + parts[6];
    return a;
}

bool ModuleSelection::matches(const SiteAddress& a) const {
    if (stack == Stack::Encoder && a.decoder) return false;
    if (stack == Stack::Decoder && !a.decoder) return false;
    if (block >= 0 && a.block != block) return false;
    return kind.empty() || a.kind == kind;
}

std::vector<std::vector<double>> datasetExpertWeights(const RoutingStatistics& statistics,
                                                      const ModuleSelection& selection) {
    const size_t experts = statistics.expert_names.size();
    std::vector<std::vector<double>> out;
    for (const DatasetRoutingStatistics& d : statistics.datasets) {
        std::vector<double> row(experts, 0.0);
        int64_t modules = 0;
        for (const SiteStatistics& s : d.sites) {
            if (!selection.matches(parseSiteName(s.site))) continue;
            const std::vector<double> w = s.meanWeight();
            for (size_t e = 0; e < experts && e < w.size(); ++e) row[e] += w[e];
            ++modules;
        }
        if (modules)
            for (double& v : row) v /= double(modules);
        out.push_back(std::move(row));
    }
    return out;
}

std::vector<double> layerProfile(const DatasetRoutingStatistics& dataset, size_t expert, bool decoder,
                                 const std::string& kind) {
    std::vector<double> sum, count;
    for (const SiteStatistics& s : dataset.sites) {
        const SiteAddress a = parseSiteName(s.site);
        if (a.decoder != decoder || (!kind.empty() && a.kind != kind)) continue;
        if (size_t(a.block) >= sum.size()) {
            sum.resize(size_t(a.block) + 1, 0.0);
            count.resize(size_t(a.block) + 1, 0.0);
        }
        const std::vector<double> w = s.meanWeight();
        sum[size_t(a.block)] += expert < w.size() ? w[expert] : 0.0;
        count[size_t(a.block)] += 1.0;
    }
    for (size_t b = 0; b < sum.size(); ++b)
        sum[b] = count[b] > 0 ? sum[b] / count[b] : std::numeric_limits<double>::quiet_NaN();
    return sum;
}

std::vector<std::vector<double>> cosineSimilarity(const std::vector<std::vector<double>>& rows) {
    std::vector<double> norm(rows.size(), 0.0);
    for (size_t i = 0; i < rows.size(); ++i) {
        for (double v : rows[i]) norm[i] += v * v;
        norm[i] = std::sqrt(norm[i]);
    }
    std::vector<std::vector<double>> out(rows.size(), std::vector<double>(rows.size(), 0.0));
    for (size_t i = 0; i < rows.size(); ++i)
        for (size_t j = 0; j < rows.size(); ++j) {
            if (norm[i] == 0.0 || norm[j] == 0.0) continue;
            double dot = 0.0;
            for (size_t e = 0; e < std::min(rows[i].size(), rows[j].size()); ++e)
                dot += rows[i][e] * rows[j][e];
            out[i][j] = dot / (norm[i] * norm[j]);
        }
    return out;
}

std::vector<size_t> similarityOrder(const std::vector<std::vector<double>>& rows) {
    std::vector<size_t> order;
    if (rows.empty()) return order;
    const auto similarity = cosineSimilarity(rows);
    std::vector<bool> placed(rows.size(), false);
    order.push_back(0);
    placed[0] = true;
    while (order.size() < rows.size()) {
        const size_t last = order.back();
        size_t best = rows.size();
        for (size_t j = 0; j < rows.size(); ++j)
            if (!placed[j] && (best == rows.size() || similarity[last][j] > similarity[last][best])) best = j;
        placed[best] = true;
        order.push_back(best);
    }
    return order;
}

}  // namespace phatgoose
