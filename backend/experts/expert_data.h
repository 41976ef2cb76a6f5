#pragma once
// Where an expert's own training data is: the dataset its training record names. Gate training, retrieval
// and average activation all find it through this one function.
#include <filesystem>
#include <optional>

#include "experts/lora_expert.h"

namespace phatgoose {

// The file the expert's training record names, if it exists: as written, else relative to the expert's
// folder, else relative to `workspace_root` (records made on another machine or by the demo builder may be
// relative). nullopt when the expert records no dataset or none of these files exists.
std::optional<std::filesystem::path> recordedTrainingData(const LoraExpert& expert,
                                                          const std::filesystem::path& workspace_root = {});

}  // namespace phatgoose
