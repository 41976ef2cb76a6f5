#pragma once
// The LoRA settings of an expert (the subset of PEFT's LoraConfig the workbench supports). No LibTorch here:
// the training dialogs read the defaults from this struct.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/t5_config.h"

namespace phatgoose {

// The subset of PEFT's LoraConfig that this workbench supports; anything else is refused on load.
struct LoraSettings {
    int64_t r = 16;
    double lora_alpha = 1.0;
    bool use_rslora = false;
    // Leaf names ("q", "wi_0", ...) or, when target_regex is set, a regex matched against the full module
    // path ("encoder.block.0.layer.0.SelfAttention.q") with std::regex_match, as PEFT does. As in PEFT, a
    // list entry matches a path that ends with "." + entry or equals it (a full path, then whatever its
    // block).
    std::vector<std::string> target_modules;
    std::optional<std::string> target_regex;
    // Block indices (encoder.block.N and decoder.block.N alike; saved with PEFT's layers_pattern "block");
    // empty = every block. Like PEFT, applies to target_modules lists only, not to a target_regex.
    std::vector<int64_t> layers_to_transform;
    std::string base_model_name_or_path;
    double scale() const;  // lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA
    // Every linear layer of T5 (PHATGOOSE's choice).
    static std::vector<std::string> allLinearLeaves(const T5Config& config);
};

}  // namespace phatgoose
