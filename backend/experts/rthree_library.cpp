#include "experts/rthree_library.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "atomic_file.h"
#include "error.h"
#include "experts/rthree_names.h"
#include "model/hub_cache.h"
#include "model/pytorch_checkpoint.h"
#include "model/t5_config.h"
#include "model/t5_loader.h"
#include "model/tensor_io.h"
#include "version.h"

namespace phatgoose {
namespace fs = std::filesystem;

namespace {

constexpr const char* kEncoderEmbeddings = "encoder.embed_tokens.weight";
constexpr const char* kDecoderEmbeddings = "decoder.embed_tokens.weight";
constexpr const char* kProvenanceFile = "phatgoose_provenance.json";

// One expert's three tensors at one module, as located in the checkpoint.
struct ModuleTensors {
    const CheckpointTensor* layer1 = nullptr;  // [d_in, r]
    const CheckpointTensor* layer2 = nullptr;  // [r, d_out]
    const CheckpointTensor* gate = nullptr;    // [d_in]
};

// Which expert holds what where: [expert index][module path].
struct LibraryLayout {
    std::vector<std::map<std::string, ModuleTensors>> experts;
    std::vector<std::string> modules;  // in the base model's site order
    int64_t rank = 0;
};

[[noreturn]] void refuse(const fs::path& file, const std::string& what) {
    throw Error(file.string() + ": " + what);
}

std::string shapeText(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

LibraryLayout locate(const PytorchCheckpoint& ckpt, const T5Config& base) {
    static const std::regex key(
        R"(^(.+)\._addons\.(expert_lora\.layer1|expert_lora\.layer2|router\.expert_embeddings)__(\d{1,6})$)");
    std::map<std::string, const LinearSite*> sites;
    const std::vector<LinearSite> all = t5LinearSites(base);
    for (const LinearSite& s : all) sites[s.path] = &s;
    LibraryLayout layout;
    std::map<int64_t, std::map<std::string, ModuleTensors>> by_index;
    for (const CheckpointTensor& t : ckpt.tensors()) {
        if (t.name == kEncoderEmbeddings || t.name == kDecoderEmbeddings) continue;
        std::smatch m;
        if (!std::regex_match(t.name, m, key))
            refuse(ckpt.file(), "unexpected tensor '" + t.name +
                                    "' (not an expert's layer1, layer2 or router "
                                    "embedding, nor embed_tokens): is this an r-three PHATGOOSE library?");
        const std::string module = m[1], part = m[2];
        auto site = sites.find(module);
        if (site == sites.end())
            refuse(ckpt.file(), "'" + t.name + "' names the module '" + module + "', which the base model (" +
                                    base.family() + ") does not have");
        ModuleTensors& slot = by_index[std::stoll(m[3])][module];
        const LinearSite& s = *site->second;
        const std::string has = "'" + t.name + "' has shape " + shapeText(t.shape);
        if (part == "expert_lora.layer1") {
            if (t.shape.size() != 2 || t.shape[0] != s.d_in)
                refuse(ckpt.file(),
                       has + "; layer1 is [d_in, r] and " + module + " takes d_in " + std::to_string(s.d_in));
            slot.layer1 = &t;
        } else if (part == "expert_lora.layer2") {
            if (t.shape.size() != 2 || t.shape[1] != s.d_out)
                refuse(ckpt.file(), has + "; layer2 is [r, d_out] and " + module + " gives d_out " +
                                        std::to_string(s.d_out));
            slot.layer2 = &t;
        } else {
            if (t.shape.size() != 1 || t.shape[0] != s.d_in)
                refuse(ckpt.file(), has + "; a router embedding is [d_in] and " + module + " takes d_in " +
                                        std::to_string(s.d_in));
            slot.gate = &t;
        }
    }
    if (by_index.empty())
        refuse(ckpt.file(), "holds no experts (no '..._addons.expert_lora.layer1__N' tensors)");
    for (const auto& [index, modules] : by_index)
        if (index != int64_t(layout.experts.size()))
            refuse(ckpt.file(), "expert " + std::to_string(layout.experts.size()) +
                                    " is missing (the indices must run 0.." +
                                    std::to_string(by_index.size() - 1) + ", and the next one found is " +
                                    std::to_string(index) + ")");
        else
            layout.experts.push_back(modules);
    // The modules of expert 0 in site order; every expert must have exactly these, complete.
    for (const LinearSite& s : all)
        if (layout.experts[0].count(s.path)) layout.modules.push_back(s.path);
    for (size_t e = 0; e < layout.experts.size(); ++e) {
        const std::string who = "expert " + std::to_string(e);
        for (const std::string& module : layout.modules) {
            auto it = layout.experts[e].find(module);
            if (it == layout.experts[e].end())
                refuse(ckpt.file(), who + " has nothing at " + module + ", which expert 0 adapts");
            const ModuleTensors& t = it->second;
            const char* missing = !t.layer1   ? "layer1"
                                  : !t.layer2 ? "layer2"
                                  : !t.gate   ? "router embedding"
                                              : nullptr;
            if (missing) refuse(ckpt.file(), who + " lacks its " + missing + " at " + module);
            if (t.layer1->shape[1] != t.layer2->shape[0])
                refuse(ckpt.file(), who + " at " + module + ": layer1 " + shapeText(t.layer1->shape) +
                                        " and layer2 " + shapeText(t.layer2->shape) +
                                        " disagree on the rank");
            if (layout.rank == 0) layout.rank = t.layer1->shape[1];
            if (t.layer1->shape[1] != layout.rank)
                refuse(ckpt.file(), who + " at " + module + " has rank " +
                                        std::to_string(t.layer1->shape[1]) + "; the library's rank is " +
                                        std::to_string(layout.rank));
        }
        if (layout.experts[e].size() != layout.modules.size())
            refuse(ckpt.file(), who + " adapts modules that expert 0 does not");
    }
    if (layout.rank < 1) refuse(ckpt.file(), "the experts have rank 0");
    return layout;
}

torch::Tensor readTensor(const PytorchCheckpoint& ckpt, const CheckpointTensor& t) {
    torch::Tensor out = readAsFloat32(
        t.dtype, t.shape, [&](void* dst) { ckpt.read(t, dst); }, ckpt.file().string() + ": '" + t.name + "'");
    if (!torch::isfinite(out).all().item<bool>())
        refuse(ckpt.file(), "'" + t.name + "' holds NaN or Inf values");
    return out;
}

// Leaf names when the modules are every site with those leaves (the usual case), else the full paths.
std::vector<std::string> targetsOf(const std::vector<std::string>& modules, const T5Config& base) {
    std::vector<std::string> leaves;
    for (const std::string& m : modules) {
        const std::string leaf = m.substr(m.rfind('.') + 1);
        if (std::find(leaves.begin(), leaves.end(), leaf) == leaves.end()) leaves.push_back(leaf);
    }
    size_t covered = 0;
    for (const LinearSite& s : t5LinearSites(base))
        if (std::find(leaves.begin(), leaves.end(), s.leaf) != leaves.end()) ++covered;
    return covered == modules.size() ? leaves : modules;
}

std::string baseModelName(const std::string& model) {
    std::error_code ec;
    if (!fs::is_directory(model, ec) && looksLikeHubId(model)) return model;
    return fs::weakly_canonical(fs::absolute(model)).string();
}

// The largest |difference| between the library's embed_tokens and the base model's shared embedding,
// compared row block by row block so that only one copy of the embedding is held.
void compareEmbeddings(const PytorchCheckpoint& ckpt, const fs::path& model_dir, RThreeImportReport& report) {
    for (const char* name : {kEncoderEmbeddings, kDecoderEmbeddings}) {
        const CheckpointTensor* t = ckpt.find(name);
        if (!t) {
            report.warnings.push_back(std::string("the library has no ") + name +
                                      " to compare with the base model");
            continue;
        }
        std::vector<fs::path> files;
        try {
            files = modelWeightFiles(model_dir);
        } catch (const Error& e) {
            report.warnings.push_back(std::string("cannot compare ") + name +
                                      " with the base model: " + e.what());
            continue;
        }
        for (const fs::path& file : files) {
            SafetensorsFile weights(file);
            for (const TensorInfo& info : weights.header().tensors) {
                if (info.name != "shared.weight") continue;
                if (info.shape != t->shape) {
                    report.warnings.push_back(std::string(name) + " has shape " + shapeText(t->shape) +
                                              " but the base model's shared.weight " + shapeText(info.shape) +
                                              ": is --model the model this library was trained on?");
                    return;
                }
                // The base embedding as stored; the library's read and compared in blocks of rows.
                torch::Tensor base =
                    torch::empty(info.shape, torch::dtype(torchType(info.dtype, file.string())));
                weights.read(info, base.data_ptr());
                const int64_t rows = t->shape[0], cols = t->shape[1], block = 1024;
                const uint64_t row_bytes = uint64_t(cols) * dtypeSize(t->dtype);
                double worst = 0;
                int64_t worst_at = 0;
                for (int64_t r0 = 0; r0 < rows; r0 += block) {
                    const int64_t n = std::min(block, rows - r0);
                    torch::Tensor mine = torch::empty({n, cols}, torch::dtype(torchType(t->dtype, name)));
                    ckpt.read(*t, uint64_t(r0) * row_bytes, uint64_t(n) * row_bytes, mine.data_ptr());
                    const torch::Tensor diff =
                        (base.narrow(0, r0, n).to(torch::kFloat) - mine.to(torch::kFloat)).abs();
                    const double top = diff.max().item<double>();
                    if (top > worst) worst = top, worst_at = r0 * cols + diff.argmax().item<int64_t>();
                }
                if (worst > 0) {
                    char text[256];
                    std::snprintf(
                        text, sizeof text,
                        "%s differs from the base model's shared.weight: largest difference %.3g at "
                        "row %lld, column %lld (is --model the model this library was trained on?)",
                        name, worst, (long long)(worst_at / cols), (long long)(worst_at % cols));
                    report.warnings.push_back(text);
                }
            }
        }
    }
}

void writeProvenance(const fs::path& dir, const fs::path& source, size_t index, const std::string& name) {
    const nlohmann::json j{{"format", "r-three PHATGOOSE library"},
                           {"source", fs::weakly_canonical(fs::absolute(source)).string()},
                           {"index", index},
                           {"name", name},
                           {"imported_by", std::string("phatgoose ") + PHATGOOSE_VERSION}};
    writeFileAtomically(dir / kProvenanceFile, j.dump(2) + "\n");
}

bool isValidFolderName(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find_first_of("/\\") == std::string::npos &&
           name[0] != '.';
}

}  // namespace

std::vector<std::string> defaultRThreeNames(size_t count) {
    if (count == rthreeP3Names().size()) return rthreeP3Names();
    if (count == rthreeFullNames().size()) return rthreeFullNames();
    std::vector<std::string> names;
    for (size_t i = 0; i < count; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "expert_%03zu", i);
        names.push_back(name);
    }
    return names;
}

RThreeImportReport importRThreeLibrary(const RThreeImportOptions& o,
                                       const std::function<void(const RThreeProgress&)>& progress,
                                       const std::atomic<bool>* cancel) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(o.out, ec)))
        throw Error(o.out.string() + ": already exists; choose a new folder for the imported library");
    const fs::path model_dir = resolveModelFolder(o.model_dir.string());
    const T5Config base = T5Config::fromFile(model_dir / "config.json");
    const PytorchCheckpoint ckpt = PytorchCheckpoint::open(o.checkpoint);
    const LibraryLayout layout = locate(ckpt, base);
    const std::vector<std::string> names =
        o.names.empty() ? defaultRThreeNames(layout.experts.size()) : o.names;
    if (names.size() != layout.experts.size())
        throw Error("--names gives " + std::to_string(names.size()) + " names but " + o.checkpoint.string() +
                    " holds " + std::to_string(layout.experts.size()) + " experts");
    for (size_t i = 0; i < names.size(); ++i) {
        if (!isValidFolderName(names[i]))
            throw Error("expert name '" + names[i] + "' (index " + std::to_string(i) +
                        ") cannot be a folder name");
        if (std::count(names.begin(), names.end(), names[i]) > 1)
            throw Error("expert name '" + names[i] + "' is given twice; expert names must be distinct");
    }

    RThreeImportReport report{.library = o.out,
                              .experts = int64_t(layout.experts.size()),
                              .modules = int64_t(layout.modules.size()),
                              .rank = layout.rank};
    compareEmbeddings(ckpt, model_dir, report);
    RThreeProgress state{.experts_total = report.experts, .bytes_total = ckpt.fileSize()};
    LoraSettings settings;
    settings.r = layout.rank;
    settings.lora_alpha = 1.0;  // the authors' experts output (x layer1 layer2) / r
    settings.target_modules = targetsOf(layout.modules, base);
    settings.base_model_name_or_path = baseModelName(o.model_dir.string());
    writeFolderAtomically(o.out, [&](const fs::path& staged) {
        for (size_t e = 0; e < layout.experts.size(); ++e) {
            if (cancel && cancel->load()) throw Error("import cancelled; no library was written");
            LoraExpert expert;
            expert.name = names[e];
            expert.settings = settings;
            for (const std::string& module : layout.modules) {
                const ModuleTensors& t = layout.experts[e].at(module);
                LoraModule m;
                m.A = readTensor(ckpt, *t.layer1).t().contiguous();  // [r, d_in]
                m.B = readTensor(ckpt, *t.layer2).t().contiguous();  // [d_out, r]
                m.gate = readTensor(ckpt, *t.gate);
                state.bytes_read += t.layer1->byte_size + t.layer2->byte_size + t.gate->byte_size;
                expert.modules.emplace(module, std::move(m));
            }
            saveLoraExpert(expert, staged / expert.name, o.bf16 ? DType::BF16 : DType::F32);
            writeProvenance(staged / expert.name, o.checkpoint, e, expert.name);
            state.experts_done = int64_t(e) + 1;
            if (progress) progress(state);
        }
    });
    return report;
}

void exportRThreeLibrary(const std::vector<LoraExpert>& experts, const fs::path& model_dir_or_id,
                         const fs::path& out) {
    if (experts.empty()) throw Error("export: the library holds no experts");
    const fs::path model_dir = resolveModelFolder(model_dir_or_id.string());
    const LoraExpert& first = experts.front();
    std::vector<std::string> modules;
    for (const auto& [path, m] : first.modules) modules.push_back(path);
    for (const LoraExpert& e : experts) {
        const std::string who = "export: expert '" + e.name + "'";
        if (!e.hasGate())
            throw Error(who + " has no gate; the authors' layout needs every expert's router embedding");
        if (e.settings.r != first.settings.r)
            throw Error(who + " has rank " + std::to_string(e.settings.r) + " and '" + first.name +
                        "' rank " + std::to_string(first.settings.r) + "; the authors' layout has one rank");
        if (std::abs(e.scale() - 1.0 / double(e.settings.r)) > 1e-12)
            throw Error(who + " scales its update by " + std::to_string(e.scale()) +
                        "; the authors' experts use lora_alpha 1 (scale 1/r) without rsLoRA");
        std::vector<std::string> mine;
        for (const auto& [path, m] : e.modules) mine.push_back(path);
        if (mine != modules)
            throw Error(who + " adapts other modules than '" + first.name +
                        "'; the authors' layout needs the same");
    }
    // The base model's input embedding, as the authors' files carry it.
    torch::Tensor embeddings;
    for (const fs::path& file : modelWeightFiles(model_dir)) {
        SafetensorsFile weights(file);
        for (const TensorInfo& info : weights.header().tensors)
            if (info.name == "shared.weight")
                embeddings = readAsFloat32(
                    info.dtype, info.shape, [&](void* d) { weights.read(info, d); }, file.string());
    }
    if (!embeddings.defined()) throw Error(model_dir.string() + ": the base model has no shared.weight");
    std::vector<torch::Tensor> keep{embeddings.contiguous()};
    std::vector<TensorToSave> tensors;
    auto add = [&](const std::string& name, torch::Tensor t) {
        keep.push_back(t.to(torch::kFloat).contiguous());
        tensors.push_back({name, DType::F32, keep.back().sizes().vec(), keep.back().data_ptr()});
    };
    tensors.push_back({kEncoderEmbeddings, DType::F32, keep[0].sizes().vec(), keep[0].data_ptr()});
    tensors.push_back({kDecoderEmbeddings, DType::F32, keep[0].sizes().vec(), keep[0].data_ptr()});
    keep.reserve(1 + experts.size() * modules.size() * 3);  // data pointers must stay valid
    for (size_t i = 0; i < experts.size(); ++i)
        for (const std::string& module : modules) {
            const LoraModule& m = experts[i].modules.at(module);
            const std::string prefix = module + "._addons.";
            const std::string index = "__" + std::to_string(i);
            add(prefix + "expert_lora.layer1" + index, m.A.t());
            add(prefix + "expert_lora.layer2" + index, m.B.t());
            add(prefix + "router.expert_embeddings" + index, m.gate);
        }
    writePytorchCheckpoint(out, tensors);
}

}  // namespace phatgoose
