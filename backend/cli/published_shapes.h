#pragma once
// The shapes of published T5 checkpoints (the config.json fields that matter to speed and memory), for the
// benchmarks that build random models of them.
#include <optional>
#include <string>

#include "model/t5_config.h"

namespace phatgoose {

// "paper" (T5-XL-LM-adapt), "large" (t5-large), "base" (t5-base), "flan-small" (flan-t5-small); nullopt for
// any other name.
std::optional<T5Config> publishedT5Shape(const std::string& name);

}  // namespace phatgoose
