#include "routing/routing_trace.h"

#include <nlohmann/json.hpp>

#include "error.h"

namespace phatgoose {

SiteRouting* RoutingTrace::find(const std::string& site) {
    for (auto& s : sites)
        if (s.site == site) return &s;
    return nullptr;
}

const SiteRouting* RoutingTrace::find(const std::string& site) const {
    return const_cast<RoutingTrace*>(this)->find(site);
}

void RoutingTrace::clearTokens() {
    for (auto& s : sites) {
        s.tokens = 0;
        s.experts.clear();
        s.weights.clear();
        s.scores.clear();
    }
}

std::string RoutingTrace::toJson() const {
    nlohmann::json sites_json = nlohmann::json::array();
    for (const auto& s : sites)
        sites_json.push_back({{"site", s.site},
                              {"decoder_tokens", s.decoder_tokens},
                              {"block", s.block},
                              {"kind", s.kind},
                              {"k", s.k},
                              {"tokens", s.tokens},
                              {"experts", s.experts},
                              {"weights", s.weights},
                              {"scores", s.scores},
                              {"candidates", s.candidates}});
    nlohmann::json j = {{"method", method},
                        {"top_k", top_k},
                        {"expert_names", expert_names},
                        {"encoder_pieces", encoder_pieces},
                        {"decoder_pieces", decoder_pieces},
                        {"sites", sites_json}};
    return j.dump();
}

RoutingTrace RoutingTrace::fromJson(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error("routing trace: malformed JSON");
    try {
        RoutingTrace t;
        t.method = j.at("method").get<std::string>();
        t.top_k = j.at("top_k").get<int64_t>();
        t.expert_names = j.at("expert_names").get<std::vector<std::string>>();
        t.encoder_pieces = j.at("encoder_pieces").get<std::vector<std::string>>();
        t.decoder_pieces = j.at("decoder_pieces").get<std::vector<std::string>>();
        for (const auto& s : j.at("sites")) {
            SiteRouting r;
            r.site = s.at("site").get<std::string>();
            r.decoder_tokens = s.at("decoder_tokens").get<bool>();
            r.block = s.at("block").get<int64_t>();
            r.kind = s.at("kind").get<std::string>();
            r.k = s.at("k").get<int64_t>();
            r.tokens = s.at("tokens").get<int64_t>();
            r.experts = s.at("experts").get<std::vector<int32_t>>();
            r.weights = s.at("weights").get<std::vector<float>>();
            r.scores = s.at("scores").get<std::vector<float>>();
            r.candidates = s.at("candidates").get<std::vector<int32_t>>();
            if (int64_t(r.experts.size()) != r.tokens * r.k || r.weights.size() != r.experts.size())
                throw Error("routing trace: site " + r.site + " has inconsistent sizes");
            t.sites.push_back(std::move(r));
        }
        return t;
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("routing trace: ") + e.what());
    }
}

}  // namespace phatgoose
