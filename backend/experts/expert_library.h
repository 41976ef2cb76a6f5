#pragma once
// An expert library: a folder of expert folders, all made for one base model.
#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "experts/lora_expert.h"

namespace phatgoose {

struct ExpertListing {
    std::string name;
    std::string task;  // from the training record, else ""
    int64_t rank = 0;
    double alpha = 0.0;
    std::vector<std::string> targets;  // target_modules, or the one target regex
    std::string base_model;
    bool has_gate = false;
    double gate_loss = 0.0;      // final gate-training loss, when there is a gate record
    int64_t training_steps = 0;  // expert training steps, when there is a training record
    int64_t modules = 0;
};

// Progress and cancellation while a library opens (a large one reads every value once to check it).
struct LibraryOpening {
    // After each expert: experts done, experts in all, bytes of their factors so far.
    std::function<void(int64_t done, int64_t total, int64_t bytes)> progress;
    const std::atomic<bool>* cancel =
        nullptr;  // checked between experts; set: Error "...: opening cancelled"
};

class ExpertLibrary {
public:
    // Loads every sub-folder that holds an adapter_config.json, sorted by name. Refuses a library whose
    // experts name different base models (base_model_name_or_path; an empty one counts as unknown, not as
    // different), or that fail to load against `base`. Experts stay as stored (mapped; lora_expert.h).
    static ExpertLibrary open(const std::filesystem::path& dir, const T5Config& base,
                              const LibraryOpening& opening = {});

    const std::filesystem::path& dir() const { return dir_; }
    const std::vector<LoraExpert>& experts() const { return experts_; }
    std::vector<LoraExpert>& experts() { return experts_; }
    const LoraExpert& find(const std::string& name) const;  // throws naming the library and the name
    std::vector<ExpertListing> listing() const;
    int64_t parameterBytes() const;

private:
    std::filesystem::path dir_;
    std::vector<LoraExpert> experts_;
};

}  // namespace phatgoose
