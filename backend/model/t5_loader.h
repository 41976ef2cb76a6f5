#pragma once
// Loading a T5 folder in Hugging Face layout: config.json, model.safetensors (or a sharded
// model.safetensors.index.json) and spiece.model. Strict: load by name, check every shape, refuse missing
// and unexpected tensors.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "model/safetensors.h"
#include "model/t5_model.h"
#include "tokenizer/tokenizer.h"

namespace phatgoose {

struct PretrainedT5 {
    std::filesystem::path dir;
    T5Config config;
    T5Model model{nullptr};
    std::shared_ptr<Tokenizer> tokenizer;
    std::string weight_dtype;  // dtype(s) as stored, e.g. "F32" or "BF16"
    int64_t parameter_count = 0;
    int64_t weight_bytes = 0;  // of the parameters as held: weight matrices in their stored dtype
};

struct LoadOptions {
    bool load_tokenizer = true;
};

// The weight files of a model folder: model.safetensors, or the shards model.safetensors.index.json names
// (plain file names inside the folder only). Throws phatgoose::Error naming the folder.
std::vector<std::filesystem::path> modelWeightFiles(const std::filesystem::path& dir);

// `dir`: a model folder in Hugging Face layout, or a hub id ("google/flan-t5-large") found in the local
// Hugging Face cache (model/hub_cache.h; never the network).
PretrainedT5 loadPretrainedT5(const std::filesystem::path& dir, const LoadOptions& options = {});

// Binds the model's parameters to the safetensors file(s) of `dir`: weight matrices as mapped views in their
// stored dtype (F32, BF16 or F16), never widened as a whole; layer norms and position biases widened to
// float32. Returns the stored dtype summary. Exposed for tests.
std::string loadT5Weights(const std::filesystem::path& dir, T5ModelImpl& model);

// Writes `model` as a Hugging Face folder (config.json + model.safetensors, every tensor as `dtype`: F32,
// BF16 or F16). The tokenizer file is the caller's business.
void saveT5(const std::filesystem::path& dir, const T5ModelImpl& model, DType dtype = DType::F32);

}  // namespace phatgoose
