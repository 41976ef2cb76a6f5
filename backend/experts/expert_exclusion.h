#pragma once
// What-if routing: the library as if it lacked some experts. Every routing method then re-normalises over
// the experts that remain, exactly as it would over a library folder without them.
#include <string>
#include <vector>

#include "experts/lora_expert.h"

namespace phatgoose {

// `experts` without the ones named in `excluded` (library order kept). Throws phatgoose::Error for a name
// that is not in the library (naming the ones that are) and when nothing would remain.
std::vector<LoraExpert> withoutExperts(std::vector<LoraExpert> experts,
                                       const std::vector<std::string>& excluded);

}  // namespace phatgoose
