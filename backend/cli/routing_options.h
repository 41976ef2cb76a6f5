#pragma once
// The routing options that generate, logits, route and eval share: --experts/--adapter, --method, --top-k.
#include <QCommandLineParser>
#include <memory>

#include "cli/command.h"
#include "model/t5_loader.h"
#include "routing/router.h"

namespace phatgoose {

// Defaults from RoutingSpec.
void declareRoutingOptions(QCommandLineParser& parser);

// The router the options ask for, attached to t5's model; nullptr when no experts were named.
std::unique_ptr<Router> routerFromOptions(const CommandContext& ctx, PretrainedT5& t5, bool record_trace);

}  // namespace phatgoose
