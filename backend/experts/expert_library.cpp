#include "experts/expert_library.h"

#include <algorithm>

#include "error.h"

namespace phatgoose {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> expertFolders(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": not a folder");
    std::vector<fs::path> folders;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec))
        if (entry.is_directory() && fs::exists(entry.path() / "adapter_config.json"))
            folders.push_back(entry.path());
    if (ec) throw Error(dir.string() + ": cannot list the folder (" + ec.message() + ")");
    if (folders.empty())
        throw Error(dir.string() + ": no expert folders (sub-folders with adapter_config.json)");
    std::sort(folders.begin(), folders.end());
    return folders;
}

// Routing mixes the experts' deltas inside one base model, so experts trained on different bases cannot
// share a library. An empty name means "not recorded" (PEFT writes null for a model built from a config)
// and is not held against the others.
void checkOneBaseModel(const fs::path& dir, const std::vector<LoraExpert>& experts) {
    const LoraExpert* first = nullptr;
    for (const LoraExpert& e : experts) {
        const std::string& base = e.settings.base_model_name_or_path;
        if (base.empty()) continue;
        if (!first) {
            first = &e;
            continue;
        }
        if (base != first->settings.base_model_name_or_path)
            throw Error(dir.string() + ": experts '" + first->name + "' (base model '" +
                        first->settings.base_model_name_or_path + "') and '" + e.name + "' (base model '" +
                        base +
                        "') were made for different base models; a library holds experts of one base model");
    }
}

std::vector<std::string> targetNames(const LoraSettings& s) {
    if (s.target_regex) return {*s.target_regex};
    return s.target_modules;
}

}  // namespace

ExpertLibrary ExpertLibrary::open(const fs::path& dir, const T5Config& base, const LibraryOpening& opening) {
    ExpertLibrary library;
    library.dir_ = dir;
    const std::vector<fs::path> folders = expertFolders(dir);
    int64_t bytes = 0;
    for (const fs::path& folder : folders) {
        if (opening.cancel && opening.cancel->load()) throw Error(dir.string() + ": opening cancelled");
        try {
            library.experts_.push_back(loadLoraExpert(folder, base));
            bytes += library.experts_.back().parameterBytes();
            if (opening.progress)
                opening.progress(int64_t(library.experts_.size()), int64_t(folders.size()), bytes);
        } catch (const Error& e) {
            throw Error(dir.string() + ": expert '" + folder.filename().string() +
                        "' cannot be loaded: " + e.what());
        }
    }
    checkOneBaseModel(dir, library.experts_);
    return library;
}

const LoraExpert& ExpertLibrary::find(const std::string& name) const {
    for (const LoraExpert& e : experts_)
        if (e.name == name) return e;
    std::string names;
    for (const LoraExpert& e : experts_) names += (names.empty() ? "" : ", ") + e.name;
    throw Error(dir_.string() + ": no expert named '" + name + "' (the library has: " + names + ")");
}

std::vector<ExpertListing> ExpertLibrary::listing() const {
    std::vector<ExpertListing> rows;
    for (const LoraExpert& e : experts_) {
        ExpertListing row;
        row.name = e.name;
        row.task = e.training_record ? e.training_record->task : "";
        row.rank = e.settings.r;
        row.alpha = e.settings.lora_alpha;
        row.targets = targetNames(e.settings);
        row.base_model = e.settings.base_model_name_or_path;
        row.has_gate = e.hasGate();
        row.gate_loss = e.gate_record ? e.gate_record->final_loss : 0.0;
        row.training_steps = e.training_record ? e.training_record->steps : 0;
        row.modules = int64_t(e.modules.size());
        rows.push_back(std::move(row));
    }
    return rows;
}

int64_t ExpertLibrary::parameterBytes() const {
    int64_t bytes = 0;
    for (const LoraExpert& e : experts_) bytes += e.parameterBytes();
    return bytes;
}

}  // namespace phatgoose
