#pragma once
// What a model folder is, as plain data for the CLI and the GUI (no LibTorch types).
#include <cstdint>
#include <filesystem>
#include <string>

#include "model/t5_config.h"

namespace phatgoose {

struct ModelSummary {
    std::string folder;
    T5Config config;
    int64_t tokenizer_size = 0;
    int64_t parameters = 0;
    double weights_mb = 0.0;  // as float32 in memory
    std::string weight_dtype;
    int64_t lora_sites = 0;
};

struct PretrainedT5;

// The summary of an already loaded model.
ModelSummary summarizeModel(const PretrainedT5& t5);
// Loads the folder fully (weights and tokenizer), so a summary also proves the folder is usable.
ModelSummary summarizeModelFolder(const std::filesystem::path& dir);

}  // namespace phatgoose
