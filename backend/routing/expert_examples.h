#pragma once
// Each expert's training examples, tokenized: what the retrieval and average-activation routers are built
// from.
#include <filesystem>
#include <vector>

#include "experts/lora_expert.h"
#include "routing/router.h"
#include "tokenizer/tokenizer.h"

namespace phatgoose {

// The training examples of each expert, tokenized, for retrieval and average-activation: read from
// `<override_dir>/<expert name>.jsonl` when override_dir is given, else from the dataset the expert's
// training record names (a relative path is taken against the expert's folder). At most
// ExpertExamples::kMaxExamplesPerExpert per expert. Errors name the expert and the file.
ExpertExamples loadExpertExamples(const std::vector<LoraExpert>& experts, const Tokenizer& tokenizer,
                                  const std::filesystem::path& override_dir = {});

}  // namespace phatgoose
