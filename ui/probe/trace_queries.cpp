#include "ui/probe/trace_queries.h"

#include <QObject>
#include <QStringList>
#include <algorithm>
#include <limits>

namespace phatgoose::ui {

TokenStream streamOf(const SiteRouting& site) {
    return site.decoder_tokens ? TokenStream::Decoder : TokenStream::Encoder;
}

bool isDecoderModule(const SiteRouting& site) {
    return site.site.rfind("decoder.", 0) == 0;
}

QString shortSiteName(const SiteRouting& site) {
    QString kind = QString::fromStdString(site.kind);
    kind.replace("EncDecAttention.", "cross.")
        .replace("SelfAttention.", "self.")
        .replace("DenseReluDense.", "ff.");
    return QString("%1%2 %3").arg(isDecoderModule(site) ? "D" : "E").arg(site.block).arg(kind);
}

QString streamName(TokenStream stream) {
    return stream == TokenStream::Decoder ? QObject::tr("decoder") : QObject::tr("encoder");
}

QString tokenPiece(const RoutingTrace& trace, TokenStream stream, int token) {
    const auto& pieces = stream == TokenStream::Decoder ? trace.decoder_pieces : trace.encoder_pieces;
    if (token >= 0 && token < int(pieces.size())) return QString::fromStdString(pieces[size_t(token)]);
    return QString("#%1").arg(token);
}

int streamLength(const RoutingTrace& trace, TokenStream stream) {
    int64_t longest = 0;
    for (const auto& s : trace.sites)
        if (streamOf(s) == stream) longest = std::max(longest, s.tokens);
    return int(longest);
}

std::vector<int> keptExperts(const SiteRouting& site, int token) {
    std::vector<int> out;
    if (token < 0 || token >= site.tokens) return out;
    for (int64_t j = 0; j < site.k; ++j) out.push_back(site.experts[size_t(token * site.k + j)]);
    return out;
}

std::vector<double> keptWeights(const SiteRouting& site, int token) {
    std::vector<double> out;
    if (token < 0 || token >= site.tokens) return out;
    for (int64_t j = 0; j < site.k; ++j) out.push_back(site.weights[size_t(token * site.k + j)]);
    return out;
}

int topExpert(const SiteRouting& site, int token) {
    const std::vector<int> kept = keptExperts(site, token);
    return kept.empty() ? -1 : kept.front();
}

QString keptSummary(const RoutingTrace& trace, const SiteRouting& site, int token) {
    const std::vector<int> kept = keptExperts(site, token);
    const std::vector<double> weights = keptWeights(site, token);
    QStringList parts;
    for (size_t j = 0; j < kept.size(); ++j) {
        const int e = kept[j];
        const QString name = e >= 0 && e < int(trace.expert_names.size())
                                 ? QString::fromStdString(trace.expert_names[size_t(e)])
                                 : QString("#%1").arg(e);
        parts << QString("%1 %2").arg(name).arg(weights[j], 0, 'f', 3);
    }
    return parts.isEmpty() ? QObject::tr("(no row)") : parts.join(", ");
}

std::vector<int> sitesOfStream(const RoutingTrace& trace, TokenStream stream, const std::string& kind) {
    std::vector<int> out;
    for (size_t i = 0; i < trace.sites.size(); ++i) {
        const SiteRouting& s = trace.sites[i];
        if (streamOf(s) == stream && (kind.empty() || s.kind == kind)) out.push_back(int(i));
    }
    return out;
}

int findSite(const RoutingTrace& trace, bool decoder_module, int64_t block, const std::string& kind) {
    for (size_t i = 0; i < trace.sites.size(); ++i) {
        const SiteRouting& s = trace.sites[i];
        if (isDecoderModule(s) == decoder_module && s.block == block && s.kind == kind) return int(i);
    }
    return -1;
}

std::vector<double> scoresAt(const RoutingTrace& trace, const SiteRouting& site, int token) {
    const size_t n = site.candidates.size();
    if (n == 0 || token < 0 || token >= site.tokens || site.scores.size() < size_t(site.tokens) * n)
        return {};
    std::vector<double> out(trace.expert_names.size(), std::numeric_limits<double>::quiet_NaN());
    for (size_t c = 0; c < n; ++c) {
        const int e = site.candidates[c];
        if (e >= 0 && e < int(out.size())) out[size_t(e)] = site.scores[size_t(token) * n + c];
    }
    return out;
}

}  // namespace phatgoose::ui
