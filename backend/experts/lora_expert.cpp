#include "experts/lora_expert.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "atomic_file.h"
#include "error.h"
#include "experts/checked_weights.h"
#include "model/pytorch_checkpoint.h"
#include "model/safetensors.h"
#include "model/tensor_io.h"

namespace phatgoose {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kConfigFile[] = "adapter_config.json";
constexpr char kWeightsFile[] = "adapter_model.safetensors";
constexpr char kGateFile[] = "phatgoose_gate.safetensors";
constexpr char kGateRecordFile[] = "phatgoose_gate.json";
constexpr char kTrainingFile[] = "training_summary.json";
constexpr char kBinWeightsFile[] = "adapter_model.bin";          // older PEFT: a torch.save state dict
constexpr char kProvenanceFile[] = "phatgoose_provenance.json";  // where an imported expert came from
// PEFT saves the adapter's tensors under the PeftModel's names: the wrapped model sits at base_model.model.
constexpr char kKeyPrefix[] = "base_model.model.";
constexpr char kGateSuffix[] = ".gate";

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shapeText(c10::IntArrayRef shape) {
    std::ostringstream out;
    out << shape;
    return out.str();
}

// A JSON value for a message, cut short so a huge pattern cannot flood the user's screen.
std::string quoteValue(const json& value) {
    std::string text = value.dump();
    return text.size() > 80 ? text.substr(0, 77) + "..." : text;
}

// ---- JSON files ----

json readJsonObject(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": missing or unreadable");
    std::stringstream text;
    text << in.rdbuf();
    json j;
    try {
        j = json::parse(text.str());
    } catch (const json::parse_error& e) {
        throw Error(path.string() + ": malformed JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw Error(path.string() + ": malformed JSON (expected an object at the top level)");
    return j;
}

// The value of `key`, or nullptr when it is absent or null (PEFT writes null for "not used").
const json* field(const json& j, const char* key) {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

[[noreturn]] void refuse(const std::string& file, const std::string& problem) {
    throw Error(file + ": " + problem);
}

bool readBool(const json& j, const char* key, const std::string& file) {
    const json* v = field(j, key);
    if (!v) return false;
    if (!v->is_boolean())
        refuse(file, std::string(key) + " is " + quoteValue(*v) + "; expected true or false");
    return v->get<bool>();
}

std::string readString(const json& j, const char* key, const std::string& file) {
    const json* v = field(j, key);
    if (!v) return "";
    if (!v->is_string()) refuse(file, std::string(key) + " is " + quoteValue(*v) + "; expected a string");
    return v->get<std::string>();
}

int64_t readInteger(const json& j, const char* key, const std::string& file) {
    const json* v = field(j, key);
    if (!v) return 0;
    if (!v->is_number_integer())
        refuse(file, std::string(key) + " is " + quoteValue(*v) + "; expected an integer");
    return v->get<int64_t>();
}

// JSON has no NaN: nlohmann writes a non-finite double as null, so null reads back as NaN (a diverged run).
double readNumber(const json& j, const char* key, const std::string& file) {
    auto it = j.find(key);
    if (it == j.end()) return 0.0;
    if (it->is_null()) return std::nan("");
    if (!it->is_number()) refuse(file, std::string(key) + " is " + quoteValue(*it) + "; expected a number");
    return it->get<double>();
}

std::vector<double> readCurve(const json& j, const char* key, const std::string& file) {
    const json* v = field(j, key);
    if (!v) return {};
    if (!v->is_array()) refuse(file, std::string(key) + " is not a list of numbers");
    std::vector<double> curve;
    for (const json& x : *v) {
        if (!x.is_number() && !x.is_null())
            refuse(file, std::string(key) + " holds " + quoteValue(x) + ", not a number");
        curve.push_back(x.is_null() ? std::nan("") : x.get<double>());
    }
    return curve;
}

// ---- which linear layers a config targets (PEFT's check_target_module_exists) ----

// The block index of "encoder.block.3.layer.0.SelfAttention.q", or -1.
int64_t blockIndex(const std::string& path) {
    const std::string marker = ".block.";
    const size_t at = path.find(marker);
    if (at == std::string::npos) return -1;
    size_t end = at + marker.size();
    int64_t index = 0;
    bool digits = false;
    for (; end < path.size() && std::isdigit(static_cast<unsigned char>(path[end])); ++end, digits = true)
        index = index * 10 + (path[end] - '0');
    return digits && end < path.size() && path[end] == '.' ? index : -1;
}

class TargetMatcher {
public:
    TargetMatcher(const LoraSettings& settings, const std::string& label) : settings_(settings) {
        if (!settings.target_regex) return;
        try {
            regex_.emplace(*settings.target_regex, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            refuse(label,
                   "target_modules regex '" + *settings.target_regex + "' is invalid (" + e.what() + ")");
        }
    }

    // As PEFT: a regex is full-matched and ignores layers_to_transform; a list entry matches a path that
    // equals it (whatever its block) or ends with "." + entry (then layers_to_transform applies).
    bool operator()(const std::string& path) const {
        if (regex_) return std::regex_match(path, *regex_);
        bool suffix = false;
        for (const std::string& name : settings_.target_modules) {
            if (path == name) return true;
            suffix = suffix || endsWith(path, "." + name);
        }
        if (!suffix || settings_.layers_to_transform.empty()) return suffix;
        const auto& layers = settings_.layers_to_transform;
        return std::find(layers.begin(), layers.end(), blockIndex(path)) != layers.end();
    }

private:
    const LoraSettings& settings_;
    std::optional<std::regex> regex_;
};

std::string describeTargets(const LoraSettings& s) {
    if (s.target_regex) return "'" + *s.target_regex + "'";
    std::string text = json(s.target_modules).dump();
    if (!s.layers_to_transform.empty())
        text += " with layers_to_transform " + json(s.layers_to_transform).dump();
    return text;
}

std::vector<LinearSite> resolveTargetsFor(const LoraSettings& settings, const T5Config& config,
                                          const std::string& label) {
    const TargetMatcher matches(settings, label);
    std::vector<LinearSite> sites;
    for (LinearSite& site : t5LinearSites(config))
        if (matches(site.path)) sites.push_back(std::move(site));
    if (sites.empty())
        refuse(label, "target_modules " + describeTargets(settings) +
                          " match no linear layer of the base model (" + config.family() + ", " +
                          std::to_string(config.num_layers) + " encoder and " +
                          std::to_string(config.num_decoder_layers) + " decoder blocks)");
    return sites;
}

// "q, k, v, o, wi_0, wi_1, wo": the leaf names a target list can use.
std::string describeLeaves(const T5Config& config) {
    std::string list;
    for (const std::string& leaf : LoraSettings::allLinearLeaves(config))
        list += (list.empty() ? "" : ", ") + leaf;
    return list;
}

// ---- adapter_config.json ----

bool isSet(const json& j, const char* key) {
    const json* v = field(j, key);
    if (!v) return false;
    if (v->is_boolean()) return v->get<bool>();
    if (v->is_array() || v->is_object() || v->is_string()) return !v->empty() && *v != "";
    return true;
}

// Every PEFT LoRA feature that changes what the weights mean and that this workbench does not implement:
// loading such an adapter as plain LoRA would compute something else without a word.
void refuseUnsupported(const json& j, const std::string& file) {
    const json* type = field(j, "peft_type");
    if (!type || *type != "LORA")
        refuse(file, "peft_type is " + (type ? quoteValue(*type) : std::string("missing")) +
                         "; only \"LORA\" adapters are supported");
    if (readBool(j, "use_dora", file)) refuse(file, "use_dora is true: DoRA adapters are not supported");
    if (const json* bias = field(j, "bias"); bias && *bias != "none")
        refuse(file, "bias is " + quoteValue(*bias) +
                         ": adapters that train biases are not supported (only \"none\")");
    if (isSet(j, "modules_to_save"))
        refuse(file, "modules_to_save is " + quoteValue(j["modules_to_save"]) +
                         ": adapters that fully train extra modules are not supported");
    for (const char* key : {"rank_pattern", "alpha_pattern"})
        if (isSet(j, key))
            refuse(file,
                   std::string(key) + " is " + quoteValue(j[key]) +
                       ": per-module ranks and alphas are not supported (one r and lora_alpha for all)");
    if (readBool(j, "fan_in_fan_out", file))
        refuse(file,
               "fan_in_fan_out is true: transposed (Conv1D-style) weights are not supported; T5's linear "
               "layers store [d_out, d_in]");
    if (readBool(j, "lora_bias", file)) refuse(file, "lora_bias is true: a bias on lora_B is not supported");
    for (const char* key : {"layer_replication", "exclude_modules", "target_parameters"})
        if (isSet(j, key)) refuse(file, std::string(key) + " is " + quoteValue(j[key]) + ": not supported");
}

int64_t readRank(const json& j, const std::string& file) {
    const json* r = field(j, "r");
    if (!r) refuse(file, "r is missing; the LoRA rank must be a positive integer");
    if (!r->is_number_integer() || r->get<int64_t>() <= 0)
        refuse(file, "r is " + quoteValue(*r) + "; the LoRA rank must be a positive integer");
    return r->get<int64_t>();
}

double readAlpha(const json& j, const std::string& file) {
    const json* alpha = field(j, "lora_alpha");
    if (!alpha) refuse(file, "lora_alpha is missing");
    if (!alpha->is_number()) refuse(file, "lora_alpha is " + quoteValue(*alpha) + "; expected a number");
    return alpha->get<double>();
}

void readTargetModules(const json& j, const std::string& file, LoraSettings& s) {
    const json* t = field(j, "target_modules");
    if (!t) refuse(file, "target_modules is missing; name the layers (e.g. [\"q\", \"v\"]) explicitly");
    if (t->is_string()) {
        s.target_regex = t->get<std::string>();
        return;
    }
    if (!t->is_array() || t->empty())
        refuse(file,
               "target_modules is " + quoteValue(*t) + "; expected a non-empty list of names or a regex");
    for (const json& name : *t) {
        if (!name.is_string() || name == "")
            refuse(file, "target_modules holds " + quoteValue(name) + "; expected module names");
        s.target_modules.push_back(name.get<std::string>());
    }
}

// PEFT finds a module's layer index with layers_pattern ("block" for T5: encoder.block.N). Without a pattern
// it takes the last ".<word>.<digits>." of the path, which in T5 is the sub-layer (layer.0/1/2), not the
// block: such a config means something nobody intends, so it is refused rather than guessed.
std::vector<int64_t> readLayers(const json& j, const std::string& file, bool regex_targets) {
    const json* layers = field(j, "layers_to_transform");
    const json* pattern = field(j, "layers_pattern");
    const bool block_pattern = pattern && (*pattern == "block" || *pattern == json::array({"block"}));
    if (pattern && !block_pattern && !(pattern->is_array() && pattern->empty()))
        refuse(file, "layers_pattern is " + quoteValue(*pattern) +
                         "; T5's layers are its blocks (encoder.block.N), so only \"block\" is supported");
    if (!layers || regex_targets) return {};  // PEFT ignores layers_to_transform for a regex target
    std::vector<int64_t> out;
    for (const json& index : layers->is_array() ? *layers : json::array({*layers})) {
        if (!index.is_number_integer() || index.get<int64_t>() < 0)
            refuse(file, "layers_to_transform is " + quoteValue(*layers) + "; expected block indices");
        out.push_back(index.get<int64_t>());
    }
    if (!out.empty() && !block_pattern)
        refuse(file,
               "layers_to_transform is set but layers_pattern is not \"block\"; PEFT would then count "
               "T5's sub-layers (layer.N) instead of its blocks");
    return out;
}

LoraSettings settingsFromJson(const json& j, const std::string& file) {
    refuseUnsupported(j, file);
    LoraSettings s;
    s.r = readRank(j, file);
    s.lora_alpha = readAlpha(j, file);
    s.use_rslora = readBool(j, "use_rslora", file);
    readTargetModules(j, file, s);
    s.layers_to_transform = readLayers(j, file, s.target_regex.has_value());
    s.base_model_name_or_path = readString(j, "base_model_name_or_path", file);
    return s;
}

json settingsToJson(const LoraSettings& s) {
    const bool layered = !s.layers_to_transform.empty();
    return json{
        {"peft_type", "LORA"},
        {"task_type", "SEQ_2_SEQ_LM"},
        {"base_model_name_or_path", s.base_model_name_or_path},
        {"revision", nullptr},
        {"r", s.r},
        {"lora_alpha", s.lora_alpha},
        {"lora_dropout", 0.0},
        {"target_modules", s.target_regex ? json(*s.target_regex) : json(s.target_modules)},
        {"bias", "none"},
        {"fan_in_fan_out", false},
        {"inference_mode", true},
        {"init_lora_weights", true},
        {"use_rslora", s.use_rslora},
        {"use_dora", false},
        {"modules_to_save", nullptr},
        {"layers_to_transform", layered ? json(s.layers_to_transform) : json(nullptr)},
        // Without the pattern PEFT would read the sub-layer index instead of the block (see readLayers).
        {"layers_pattern", layered ? json("block") : json(nullptr)},
        {"rank_pattern", json::object()},
        {"alpha_pattern", json::object()},
    };
}

// ---- tensors ----

// The module path and A/B of a PEFT key. Saved adapters drop the adapter name ("lora_A.weight"); a raw
// PeftModel state dict keeps it ("lora_A.default.weight"), and both are accepted.
bool parsePeftKey(const std::string& key, std::string& path, char& which) {
    if (key.rfind(kKeyPrefix, 0) != 0) return false;
    for (const char* suffix :
         {".lora_A.weight", ".lora_B.weight", ".lora_A.default.weight", ".lora_B.default.weight"}) {
        if (!endsWith(key, suffix)) continue;
        const size_t prefix = sizeof(kKeyPrefix) - 1;
        path = key.substr(prefix, key.size() - prefix - std::strlen(suffix));
        which = suffix[6];
        return !path.empty();
    }
    return false;
}

torch::Tensor readFloat32(const SafetensorsFile& file, const TensorInfo& info) {
    return readAsFloat32(
        info.dtype, info.shape, [&](void* dst) { file.read(info, dst); },
        file.path().string() + ": '" + info.name + "'");
}

// LoRA matrices stay as stored (F32, BF16 or F16) and mapped: a 166-expert library costs no copy, and only
// the pages routing touches become resident. The kernels read every dtype (routing/lora_kernels.h).
torch::Tensor readStored(const std::shared_ptr<const SafetensorsFile>& file, const TensorInfo& info) {
    return mappedTensor(file, info);  // refuses other dtypes by name
}

// One stored tensor of an adapter's weight file, whichever format holds it.
struct StoredTensor {
    std::string name;
    std::function<torch::Tensor()> read;  // F32, BF16 or F16
};

// The tensors of adapter_model.safetensors, or of adapter_model.bin (a torch.save state dict, read by
// the allowlisted reader in model/pytorch_checkpoint.h: nothing in it is executed).
// `vouched`: the file's values were checked finite on an earlier open (experts/checked_weights.h), so
// they need not be read now; `checked` runs once they have been.
std::vector<StoredTensor> adapterTensors(const fs::path& dir, std::shared_ptr<const void>& keep_open,
                                         fs::path& file, bool& vouched, std::function<void()>& checked) {
    std::vector<StoredTensor> out;
    file = dir / kWeightsFile;
    if (fs::exists(file)) {
        auto weights = std::make_shared<const SafetensorsFile>(file);
        keep_open = weights;
        vouched = CheckedWeights::forUser().vouchesFor(file);
        // Checking every value faulted in every page; hand them back, so that an opened library costs
        // resident memory only for what routing later reads. Recorded, the next open reads none of them.
        checked = [weights, file] {
            weights->releasePages();
            CheckedWeights::forUser().record(file);
        };
        for (const TensorInfo& info : weights->header().tensors)
            out.push_back({info.name, [weights, &info] { return readStored(weights, info); }});
        return out;
    }
    file = dir / kBinWeightsFile;
    if (!fs::exists(file)) refuse((dir / kWeightsFile).string(), "missing (the adapter's weights)");
    auto checkpoint = std::make_shared<PytorchCheckpoint>(PytorchCheckpoint::open(file));
    keep_open = checkpoint;
    for (const CheckpointTensor& t : checkpoint->tensors())
        out.push_back({t.name, [checkpoint, &t] {
                           return readAsFloat32(
                               t.dtype, t.shape, [&](void* dst) { checkpoint->read(t, dst); },
                               checkpoint->file().string() + ": '" + t.name + "'");
                       }});
    return out;
}

bool allFinite(const torch::Tensor& t) {
    // A gate vector is a few thousand floats, and a library has some 70,000 of them: a plain loop, where
    // three ATen ops per vector took a third of opening a 166-expert library.
    if (t.scalar_type() == torch::kFloat && t.is_contiguous()) {
        const float* p = t.data_ptr<float>();
        float probe = 0.0f;  // x * 0 is NaN exactly when x is NaN or infinite
        for (int64_t i = 0; i < t.numel(); ++i) probe += p[i] * 0.0f;
        return probe == 0.0f;
    }
    return torch::isfinite(t).all().item<bool>();
}

void checkFinite(const torch::Tensor& t, const std::string& file, const std::string& name) {
    if (allFinite(t)) return;  // one pass in the common case
    if (torch::isnan(t).any().item<bool>()) refuse(file, "'" + name + "' contains NaN");
    if (torch::isinf(t).any().item<bool>()) refuse(file, "'" + name + "' contains Inf");
}

// A: [r, d_in] and B: [d_out, r], against the base model's layer and the config's rank.
// The message is built only on failure: a 166-expert library checks some 140,000 tensors on open.
void checkModuleShape(const torch::Tensor& t, char which, const LinearSite& site, int64_t r,
                      const std::string& file) {
    const int64_t expected_cols = which == 'A' ? site.d_in : r, expected_rows = which == 'A' ? r : site.d_out;
    if (t.dim() == 2 && t.size(0) == expected_rows && t.size(1) == expected_cols) return;
    const std::string key = peftKey(site.path, which);
    const std::string has = "'" + key + "' has shape " + shapeText(t.sizes()) + " but ";
    if (t.dim() != 2) refuse(file, has + "LoRA matrices are 2-D");
    if (which == 'A' && t.size(1) != site.d_in)
        refuse(file, has + "the base model's " + site.leaf + " takes d_in " + std::to_string(site.d_in));
    if (which == 'B' && t.size(0) != site.d_out)
        refuse(file, has + "the base model's " + site.leaf + " gives d_out " + std::to_string(site.d_out));
    if (t.size(which == 'A' ? 0 : 1) != r) refuse(file, has + kConfigFile + " says r = " + std::to_string(r));
}

[[noreturn]] void refuseUnexpected(const std::string& file, const std::vector<std::string>& names,
                                   const std::string& why) {
    std::string list;
    for (size_t i = 0; i < names.size() && i < 3; ++i) list += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > 3) list += " and " + std::to_string(names.size() - 3) + " more";
    refuse(file, "unexpected tensor " + list + " (" + why + ")");
}

std::map<std::string, LoraModule> readAdapterWeights(const fs::path& dir, const LoraSettings& settings,
                                                     const std::vector<LinearSite>& sites) {
    std::shared_ptr<const void> keep_open;
    fs::path path;
    std::function<void()> checked = [] {};
    bool vouched = false;
    const std::vector<StoredTensor> stored = adapterTensors(dir, keep_open, path, vouched, checked);
    const std::string file = path.string();
    std::map<std::string, const LinearSite*> by_path;
    for (const LinearSite& site : sites) by_path[site.path] = &site;
    std::map<std::string, LoraModule> modules;
    std::vector<std::string> unexpected;
    for (const StoredTensor& tensor : stored) {
        std::string module;
        char which = 0;
        if (!parsePeftKey(tensor.name, module, which) || !by_path.count(module)) {
            unexpected.push_back(tensor.name);
            continue;
        }
        torch::Tensor& slot = which == 'A' ? modules[module].A : modules[module].B;
        if (slot.defined())
            refuse(file, "'" + tensor.name + "' is stored twice (with and without the adapter name)");
        slot = tensor.read();
        checkModuleShape(slot, which, *by_path[module], settings.r, file);
        if (!vouched) checkFinite(slot, file, tensor.name);
    }
    if (!unexpected.empty())
        refuseUnexpected(file, unexpected,
                         std::string("not a LoRA A/B of a layer that ") + kConfigFile + " targets");
    for (const LinearSite& site : sites)
        for (char which : {'A', 'B'})
            if (!(which == 'A' ? modules[site.path].A : modules[site.path].B).defined())
                refuse(file, "missing '" + peftKey(site.path, which) + "' (" + kConfigFile + " targets " +
                                 site.path + ")");
    if (!vouched) checked();
    return modules;
}

// ---- the PHATGOOSE gate ----

void readGateVectors(const fs::path& path, std::map<std::string, LoraModule>& modules) {
    const std::string file = path.string();
    SafetensorsFile gates(path);
    std::vector<std::string> unexpected;
    for (const TensorInfo& info : gates.header().tensors) {
        const std::string& key = info.name;
        const std::string module = endsWith(key, kGateSuffix) ? key.substr(0, key.size() - 5) : "";
        auto it = modules.find(module);
        if (it == modules.end()) {
            unexpected.push_back(key);
            continue;
        }
        const int64_t d_in = it->second.A.size(1);
        if (info.shape != std::vector<int64_t>{d_in})
            refuse(file, "'" + key + "' has shape " + shapeText(info.shape) +
                             " but the module's gate needs [" + std::to_string(d_in) + "] (its d_in)");
        it->second.gate = readFloat32(gates, info);
        checkFinite(it->second.gate, file, key);
    }
    if (!unexpected.empty())
        refuseUnexpected(file, unexpected, "not the gate of one of the expert's LoRA modules");
    for (const auto& [module, m] : modules)
        if (!m.gate.defined())
            refuse(file,
                   "no gate for module '" + module + "' (expected the key '" + module + kGateSuffix + "')");
}

GateRecord gateRecordFromJson(const fs::path& path) {
    const json j = readJsonObject(path);
    const std::string file = path.string();
    GateRecord g;
    g.steps = readInteger(j, "steps", file);
    g.learning_rate = readNumber(j, "learning_rate", file);
    g.batch_size = readInteger(j, "batch_size", file);
    if (const json* seed = field(j, "seed")) {
        if (!seed->is_number_unsigned())
            refuse(file, "seed is " + quoteValue(*seed) + "; expected a non-negative integer");
        g.seed = seed->get<uint64_t>();
    }
    g.final_loss = readNumber(j, "final_loss", file);
    g.dataset = readString(j, "dataset", file);
    g.loss_curve = readCurve(j, "loss_curve", file);
    return g;
}

json gateRecordToJson(const GateRecord& g) {
    return json{{"steps", g.steps},           {"learning_rate", g.learning_rate},
                {"batch_size", g.batch_size}, {"seed", g.seed},
                {"final_loss", g.final_loss}, {"dataset", g.dataset},
                {"loss_curve", g.loss_curve}};
}

TrainingRecord trainingRecordFromJson(const fs::path& path) {
    const json j = readJsonObject(path);
    const std::string file = path.string();
    TrainingRecord t;
    t.steps = readInteger(j, "steps", file);
    t.final_loss = readNumber(j, "final_loss", file);
    t.best_valid_loss = readNumber(j, "best_valid_loss", file);
    t.dataset = readString(j, "dataset", file);
    t.task = readString(j, "task", file);
    t.loss_curve = readCurve(j, "loss_curve", file);
    return t;
}

json trainingRecordToJson(const TrainingRecord& t) {
    return json{{"steps", t.steps},
                {"final_loss", t.final_loss},
                {"best_valid_loss", t.best_valid_loss},
                {"dataset", t.dataset},
                {"task", t.task},
                {"loss_curve", t.loss_curve}};
}

// A gate record without gate vectors can only come from a hand-edited folder; the vectors are always written
// first (see saveLoraExpert).
void readGate(const fs::path& dir, LoraExpert& expert) {
    if (!fs::exists(dir / kGateFile)) {
        if (fs::exists(dir / kGateRecordFile))
            refuse((dir / kGateRecordFile).string(),
                   std::string("a gate record without its gate vectors (") + kGateFile + " is missing)");
        return;
    }
    readGateVectors(dir / kGateFile, expert.modules);
    if (fs::exists(dir / kGateRecordFile)) expert.gate_record = gateRecordFromJson(dir / kGateRecordFile);
}

// ---- saving ----

std::string folderName(const fs::path& dir) {
    const fs::path clean = dir.lexically_normal();
    return clean.has_filename() ? clean.filename().string() : clean.parent_path().filename().string();
}

void checkSavableModule(const std::string& path, const LoraModule& m, int64_t r, const std::string& label) {
    const std::string where = label + ": module '" + path + "'";
    if (!m.A.defined() || !m.B.defined()) throw Error(where + " lacks its A or B matrix");
    if (m.A.dim() != 2 || m.B.dim() != 2 || m.A.size(0) != r || m.B.size(1) != r)
        throw Error(where + " has A " + shapeText(m.A.sizes()) + " and B " + shapeText(m.B.sizes()) +
                    ", which do not fit A [r, d_in], B [d_out, r] with r = " + std::to_string(r));
    if (m.gate.defined() && (m.gate.dim() != 1 || m.gate.size(0) != m.A.size(1)))
        throw Error(where + " has a gate of shape " + shapeText(m.gate.sizes()) + "; expected [" +
                    std::to_string(m.A.size(1)) + "] (its d_in)");
    for (const torch::Tensor* t : {&m.A, &m.B, &m.gate})
        if (t->defined() && !torch::isfinite(*t).all().item<bool>())
            throw Error(where + " holds NaN or Inf values (did training diverge?)");
}

// Everything is checked before the first byte is written, so a refused save leaves the folder untouched.
void checkSavable(const LoraExpert& e, const fs::path& dir) {
    const std::string label = "cannot save expert '" + e.name + "' to " + dir.string();
    if (e.settings.r <= 0)
        throw Error(label + ": the LoRA rank must be positive (r = " + std::to_string(e.settings.r) + ")");
    if (e.modules.empty()) throw Error(label + ": it has no LoRA modules");
    const TargetMatcher matches(e.settings, label);
    size_t gates = 0;
    for (const auto& [path, m] : e.modules) {
        if (!matches(path))
            throw Error(label + ": module '" + path + "' is not selected by its target_modules " +
                        describeTargets(e.settings) + ", so the saved adapter would not load");
        checkSavableModule(path, m, e.settings.r, label);
        gates += m.gate.defined() ? 1 : 0;
    }
    if (gates != 0 && gates != e.modules.size())
        throw Error(label + ": " + std::to_string(gates) + " of its " + std::to_string(e.modules.size()) +
                    " modules have a gate; a gate covers every module or none");
}

// Replace only what we made: `dir` may be replaced when it does not exist, is an empty folder, or is an
// expert folder holding nothing but the files this program writes. Anything else is refused by name.
void checkReplaceable(const fs::path& dir) {
    std::error_code ec;
    const fs::file_status status = fs::symlink_status(dir, ec);
    if (!fs::exists(status)) return;
    if (!fs::is_directory(status)) throw Error(dir.string() + ": exists and is not a folder");
    std::vector<std::string> foreign;
    bool empty = true;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        empty = false;
        const std::string name = entry.path().filename().string();
        if (name != kConfigFile && name != kWeightsFile && name != kGateFile && name != kGateRecordFile &&
            name != kTrainingFile && name != kProvenanceFile)
            foreign.push_back(name);
    }
    if (ec) throw Error(dir.string() + ": cannot read the folder (" + ec.message() + ")");
    if (empty) return;
    if (!fs::exists(dir / kConfigFile))
        throw Error(dir.string() + ": exists and holds no expert (no " + kConfigFile +
                    "); refusing to replace a folder this program did not make");
    if (!foreign.empty()) {
        std::string list;
        for (const std::string& f : foreign) list += (list.empty() ? "" : ", ") + f;
        throw Error(dir.string() + ": holds files that are not part of an expert (" + list +
                    "); refusing to replace it (move them, or save the expert elsewhere)");
    }
}

// Contiguous copies in the stored dtype that outlive the write, and the descriptions that point into them.
struct TensorsToWrite {
    DType dtype = DType::F32;
    std::string expert;  // for messages
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> tensors;
    void add(const std::string& name, const torch::Tensor& t) {
        keep.push_back(t.detach().to(torch::kCPU, torchType(dtype, name)).contiguous());
        // F16 ends at 65504: a finite float32 weight can become Inf, which no load would accept.
        if (dtype != DType::F32 && !torch::isfinite(keep.back()).all().item<bool>())
            throw Error("cannot save expert '" + expert + "': '" + name +
                        "' has values beyond the range of " + std::string(dtypeName(dtype)) +
                        "; save it as F32");
        tensors.push_back({name, dtype, keep.back().sizes().vec(), keep.back().data_ptr()});
    }
};

void writeAdapterWeights(const LoraExpert& e, const fs::path& path, DType dtype) {  // into a new folder
    TensorsToWrite out{.dtype = dtype, .expert = e.name};
    for (const auto& [module, m] : e.modules) {
        out.add(peftKey(module, 'A'), m.A);
        out.add(peftKey(module, 'B'), m.B);
    }
    writeSafetensors(path, out.tensors, {{"format", "pt"}});
}

// The gate's vectors and its record change together: both are written before either replaces the old one,
// and a record that described an earlier gate does not survive beside new vectors.
void writeGateFiles(const LoraExpert& e, const fs::path& dir, DType dtype = DType::F32) {
    TensorsToWrite out{.dtype = dtype, .expert = e.name};
    for (const auto& [module, m] : e.modules) out.add(module + kGateSuffix, m.gate);
    FileTransaction files;
    writeSafetensors(files, dir / kGateFile, out.tensors, {{"format", "pt"}});
    if (e.gate_record)
        files.write(dir / kGateRecordFile, gateRecordToJson(*e.gate_record).dump(2) + "\n");
    else
        files.remove(dir / kGateRecordFile);
    files.commit();
}

}  // namespace

// ---- public API ----

double LoraSettings::scale() const {
    return use_rslora ? lora_alpha / std::sqrt(double(r)) : lora_alpha / double(r);
}

std::vector<std::string> LoraSettings::allLinearLeaves(const T5Config& config) {
    if (config.gated) return {"q", "k", "v", "o", "wi_0", "wi_1", "wo"};
    return {"q", "k", "v", "o", "wi", "wo"};
}

std::vector<LinearSite> resolveTargets(const LoraSettings& settings, const T5Config& config) {
    return resolveTargetsFor(settings, config, "LoRA settings");
}

std::string peftKey(const std::string& module_path, char which) {
    if (which != 'A' && which != 'B')
        throw Error("peftKey: a LoRA matrix is 'A' or 'B', not '" + std::string(1, which) + "'");
    return kKeyPrefix + module_path + ".lora_" + which + ".weight";
}

bool LoraExpert::hasGate() const {
    if (modules.empty()) return false;
    for (const auto& [path, m] : modules)
        if (!m.gate.defined()) return false;
    return true;
}

int64_t LoraExpert::parameterBytes() const {
    int64_t bytes = 0;
    for (const auto& [path, m] : modules)
        for (const torch::Tensor* t : {&m.A, &m.B, &m.gate})
            if (t->defined()) bytes += int64_t(t->nbytes());
    return bytes;
}

LoraExpert loadLoraExpert(const fs::path& dir, const T5Config& base) {
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a folder");
    const fs::path config_path = dir / kConfigFile;
    if (!fs::exists(config_path)) refuse(config_path.string(), "missing (not a PEFT adapter folder)");
    LoraExpert e;
    e.name = folderName(dir);
    e.dir = dir;
    e.settings = settingsFromJson(readJsonObject(config_path), config_path.string());
    const std::vector<LinearSite> sites = resolveTargetsFor(e.settings, base, config_path.string());
    e.modules = readAdapterWeights(dir, e.settings, sites);
    readGate(dir, e);
    if (fs::exists(dir / kTrainingFile)) e.training_record = trainingRecordFromJson(dir / kTrainingFile);
    return e;
}

LoraExpert initLoraExpert(const std::string& name, const LoraSettings& settings, const T5Config& base,
                          uint64_t seed) {
    if (settings.r <= 0)
        throw Error("expert '" + name +
                    "': the LoRA rank must be positive (r = " + std::to_string(settings.r) + ")");
    const std::vector<LinearSite> sites = resolveTargets(settings, base);
    // No silent choices: every target named must adapt something (a typo would otherwise train less).
    if (!settings.target_regex)
        for (const std::string& target : settings.target_modules) {
            LoraSettings one = settings;
            one.target_modules = {target};
            const TargetMatcher matches(one, "expert '" + name + "'");
            if (std::none_of(sites.begin(), sites.end(),
                             [&](const LinearSite& s) { return matches(s.path); }))
                throw Error("expert '" + name + "': target '" + target + "' matches no linear layer of the " +
                            base.family() + " model (its layers: " + describeLeaves(base) + ")");
        }
    // A rank above a layer's smaller side adds parameters and no expressiveness; it is also how a typo
    // (--rank 100000) would allocate without end.
    for (const LinearSite& site : sites)
        if (settings.r > std::min(site.d_in, site.d_out))
            throw Error("expert '" + name + "': rank " + std::to_string(settings.r) +
                        " exceeds the size of " + site.path + " (" + std::to_string(site.d_out) + " x " +
                        std::to_string(site.d_in) + "); a LoRA rank is at most min(d_in, d_out) = " +
                        std::to_string(std::min(site.d_in, site.d_out)));
    LoraExpert e;
    e.name = name;
    e.settings = settings;
    // A private generator: the global one is shared with dropout and data shuffling on other threads.
    at::Generator generator = at::detail::createCPUGenerator(seed);
    for (const LinearSite& site : sites) {
        // PEFT's A: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(d_in), 1/sqrt(d_in)), as nn.Linear's default.
        const double bound = 1.0 / std::sqrt(double(site.d_in));
        LoraModule m;
        m.A = torch::empty({settings.r, site.d_in}).uniform_(-bound, bound, generator);  // [r, d_in]
        m.B = torch::zeros({site.d_out, settings.r});                                    // [d_out, r]
        e.modules.emplace(site.path, std::move(m));
    }
    return e;
}

// A gate trained for earlier weights must never sit beside new A/B matrices (its shapes would still fit,
// so nothing would notice): the new folder holds only what this expert has, and replaces the old one whole.
void saveLoraExpert(const LoraExpert& expert, const fs::path& dir, DType dtype) {
    checkSavable(expert, dir);
    checkReplaceable(dir);
    if (dir.has_parent_path()) {  // a library folder that does not exist yet is made, as for any new file
        std::error_code ec;
        fs::create_directories(dir.parent_path(), ec);
        if (ec) throw Error(dir.string() + ": cannot create its folder (" + ec.message() + ")");
    }
    // The whole folder is written beside `dir` and swapped in: a failure at any point (a full disk
    // included) leaves the old expert, gate files and all, byte for byte; a new folder appears only whole.
    writeFolderAtomically(dir, [&](const fs::path& staged) {
        writeAdapterWeights(expert, staged / kWeightsFile, dtype);
        writeFileAtomically(staged / kConfigFile, settingsToJson(expert.settings).dump(2) + "\n");
        if (expert.hasGate()) writeGateFiles(expert, staged, dtype);
        if (expert.training_record)
            writeFileAtomically(staged / kTrainingFile,
                                trainingRecordToJson(*expert.training_record).dump(2) + "\n");
    });
    // Every value was checked finite before writing (checkSavable, and above for a narrower dtype).
    CheckedWeights::forUser().record(dir / kWeightsFile);
}

void saveGate(const LoraExpert& expert, const fs::path& dir) {
    checkSavable(expert, dir);
    if (!expert.hasGate())
        throw Error("cannot save the gate of expert '" + expert.name + "': it has no gate");
    if (!fs::is_directory(dir))
        throw Error(dir.string() + ": not a folder (save the expert before its gate)");
    writeGateFiles(expert, dir);
}

}  // namespace phatgoose
