#pragma once
// The routing options that generate, logits, route and eval share: --experts/--adapter, --method, --top-k.
#include <QCommandLineParser>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "model/t5_loader.h"
#include "routing/router.h"

namespace phatgoose {

// Defaults from RoutingSpec.
void declareRoutingOptions(QCommandLineParser& parser);

// --exclude NAME[,NAME]: the experts to route without (what-if); empty when not given.
std::vector<std::string> excludedExperts(const CommandContext& ctx);
void declareExcludeOption(QCommandLineParser& parser);

// --pin NAME [--pin-tokens FROM-TO] [--pin-output]: one expert at every module for a span of input tokens
// (what-if); inactive when --pin is not given. Declared by declareRoutingOptions.
TokenPin tokenPin(const CommandContext& ctx);
// {"expert", "first", "last", "output_tokens"} for a run's recorded settings; null when inactive.
nlohmann::json tokenPinJson(const TokenPin& pin);

// --max-input-tokens for the commands that cut long inputs (generate, route); `logits` refuses instead.
void declareInputLimit(QCommandLineParser& parser);
// The text's ids, cut to --max-input-tokens (eos kept) with a warning on stderr when it had to cut.
std::vector<int64_t> encodeInput(const CommandContext& ctx, const Tokenizer& tokenizer,
                                 const std::string& text);

// The router the options ask for, attached to t5's model; nullptr when no experts were named. Its warnings
// (experts left out) go to stderr.
std::unique_ptr<Router> routerFromOptions(const CommandContext& ctx, PretrainedT5& t5, bool record_trace);

}  // namespace phatgoose
