#pragma once
// The authors' released PHATGOOSE libraries (hub organisation r-three: P3_Phatgoose, FLAN_Phatgoose), read
// and written without Python. Each is one torch.save checkpoint (model/pytorch_checkpoint.h) of an
// OrderedDict holding, for every T5 linear module M and expert index i:
//   M._addons.expert_lora.layer1__i          [d_in, r]   = A transposed
//   M._addons.expert_lora.layer2__i          [r, d_out]  = B transposed
//   M._addons.router.expert_embeddings__i    [d_in]      the PHATGOOSE gate (the router key)
// plus encoder.embed_tokens.weight and decoder.embed_tokens.weight copied from the base model. The expert
// computes W x + (x layer1 layer2) / 16, i.e. PEFT r 16 with lora_alpha 1.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "experts/lora_expert.h"

namespace phatgoose {

struct RThreeImportOptions {
    std::filesystem::path checkpoint;  // best.pt
    std::filesystem::path model_dir;   // the base model the library was trained on
    std::filesystem::path out;         // the library folder to create (must not exist)
    // One name per expert in index order; empty: the authors' names for 36 or 166 experts, else expert_000...
    std::vector<std::string> names;
    bool bf16 = false;  // store the experts' weights and gates as BF16 instead of float32
};

struct RThreeProgress {
    int64_t experts_done = 0, experts_total = 0;
    uint64_t bytes_read = 0, bytes_total = 0;
};

struct RThreeImportReport {
    std::filesystem::path library;
    int64_t experts = 0, modules = 0, rank = 0;
    std::vector<std::string> warnings;  // e.g. embed_tokens that differ from the base model's
};

// Writes one PEFT folder per expert (safetensors, r and lora_alpha 1, every module found) with its
// phatgoose_gate.safetensors and a provenance note (phatgoose_provenance.json: source file, index). Every
// expert must have layer1, layer2 and a router embedding for every module, with the base model's widths
// and one rank. Streaming: one expert in memory at a time. The library is built in a fresh folder beside
// `out` and renamed into place when complete, so a cancel (`cancel`) or any error leaves no `out`.
RThreeImportReport importRThreeLibrary(const RThreeImportOptions& options,
                                       const std::function<void(const RThreeProgress&)>& progress = {},
                                       const std::atomic<bool>* cancel = nullptr);

// The reverse: a library of gated experts with one rank r and lora_alpha/r = 1/16 on the same modules, as
// one checkpoint in the authors' layout (embed_tokens from the base model), so that gates trained here can
// be evaluated with the authors' code. Any other expert is refused with the reason.
void exportRThreeLibrary(const std::vector<LoraExpert>& experts, const std::filesystem::path& model_dir,
                         const std::filesystem::path& out);

// The names `importRThreeLibrary` gives `count` experts when none are given.
std::vector<std::string> defaultRThreeNames(size_t count);

}  // namespace phatgoose
