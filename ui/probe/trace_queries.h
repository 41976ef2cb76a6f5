#pragma once
// Plain questions asked of a RoutingTrace by the probing views: which modules route a token stream, what a
// token kept at a module, how to name a module compactly. No Qt Widgets, no LibTorch, so tests call them too.
#include <QString>
#include <vector>

#include "routing/routing_trace.h"

namespace phatgoose::ui {

// A token stream: the rows of a module are encoder positions or decoder positions.
enum class TokenStream { Encoder, Decoder };

TokenStream streamOf(const SiteRouting& site);
bool isDecoderModule(const SiteRouting& site);  // the module sits in the decoder stack (path "decoder....")
// "E0 self.q", "D2 cross.k", "D1 ff.wi_0": stack, block and a short kind, for tick labels.
QString shortSiteName(const SiteRouting& site);
QString streamName(TokenStream stream);

// The token's piece, or "#t" where the trace has no piece for it.
QString tokenPiece(const RoutingTrace& trace, TokenStream stream, int token);
int streamLength(const RoutingTrace& trace, TokenStream stream);  // the longest module's row count

// The experts the token kept at the module (library indices, best first) and their weights.
std::vector<int> keptExperts(const SiteRouting& site, int token);
std::vector<double> keptWeights(const SiteRouting& site, int token);
int topExpert(const SiteRouting& site, int token);  // -1 where the module has no such row
// "reverse 0.62, count 0.38"
QString keptSummary(const RoutingTrace& trace, const SiteRouting& site, int token);

// Indices into trace.sites of the modules whose rows are `stream` tokens, in trace order; `kind` empty means
// every kind.
std::vector<int> sitesOfStream(const RoutingTrace& trace, TokenStream stream, const std::string& kind = {});
// The module of the given stack, block and kind, or -1.
int findSite(const RoutingTrace& trace, bool decoder_module, int64_t block, const std::string& kind);

// Every candidate's score at a token, per library expert (NaN where the expert is no candidate there); empty
// when the trace recorded no scores for the module.
std::vector<double> scoresAt(const RoutingTrace& trace, const SiteRouting& site, int token);

}  // namespace phatgoose::ui
