#pragma once
// `phatgoose bench --scale paper|large|base|flan-small`: a model of a published T5 shape and N rank-16
// experts with gates, built in memory in BF16 (random values, no disk), measured base against PHATGOOSE
// top-2.
#include "cli/command.h"

namespace phatgoose {

void runScaleBench(CommandContext& ctx);

}  // namespace phatgoose
