#include "model/t5_loader.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "atomic_file.h"
#include "error.h"
#include "model/hub_cache.h"
#include "model/safetensors.h"
#include "model/tensor_io.h"

namespace phatgoose {
namespace fs = std::filesystem;

std::vector<fs::path> modelWeightFiles(const fs::path& dir) {
    if (fs::exists(dir / "model.safetensors")) return {dir / "model.safetensors"};
    const fs::path index = dir / "model.safetensors.index.json";
    if (!fs::exists(index)) {
        if (fs::exists(dir / "pytorch_model.bin"))
            throw Error(
                (dir / "pytorch_model.bin").string() +
                ": PyTorch pickle checkpoints are not loaded (they can run code); convert the model to "
                "model.safetensors first");
        throw Error(dir.string() + ": no model.safetensors or model.safetensors.index.json");
    }
    std::ifstream in(index);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        throw Error(index.string() + ": malformed index (expected an object with a \"weight_map\" object)");
    std::set<std::string> names;
    for (auto& [tensor, file] : j["weight_map"].items()) {
        if (!file.is_string()) throw Error(index.string() + ": shard of '" + tensor + "' is not a file name");
        const fs::path shard(file.get<std::string>());
        if (shard.is_absolute() || shard.has_parent_path() || shard.string() == ".." || shard.empty())
            throw Error(index.string() + ": shard '" + shard.string() +
                        "' is not a plain file name inside the model folder");
        names.insert(shard.string());
    }
    std::vector<fs::path> files;
    for (const auto& name : names) files.push_back(dir / name);
    return files;
}

namespace {

// The parameter becomes a view of the file's mapping: no copy, pages read when first used.
void bindTo(const std::shared_ptr<const SafetensorsFile>& file, const TensorInfo& info,
            torch::Tensor& param) {
    if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16)
        throw Error(file->path().string() + ": tensor '" + info.name + "' has dtype " +
                    std::string(dtypeName(info.dtype)) + "; model weights must be F32, F16 or BF16");
    torch::NoGradGuard no_grad;
    torch::Tensor stored = mappedTensor(file, info);
    param.set_data(keepsStoredDtype(info.name, info.shape.size()) ? stored : stored.to(torch::kFloat));
}

void checkShape(const SafetensorsFile& file, const TensorInfo& info, const torch::Tensor& param) {
    if (info.shape != param.sizes().vec()) {
        std::ostringstream msg;
        msg << file.path().string() << ": tensor '" << info.name << "' has shape "
            << c10::IntArrayRef(info.shape) << " but the config needs " << param.sizes();
        throw Error(msg.str());
    }
}

}  // namespace

std::string loadT5Weights(const fs::path& dir, T5ModelImpl& model) {
    auto params = model.named_parameters(/*recurse=*/true);
    std::set<std::string> pending;
    for (const auto& p : params) pending.insert(p.key());
    std::set<std::string> dtypes;
    for (const fs::path& path : modelWeightFiles(dir)) {
        if (!fs::exists(path)) throw Error(path.string() + ": shard file named by the index is missing");
        const auto shared_file = std::make_shared<const SafetensorsFile>(path);
        const SafetensorsFile& file = *shared_file;
        for (const TensorInfo& info : file.header().tensors) {
            torch::Tensor* param = params.find(info.name);
            if (!param) {
                if (!ignorableWeightReason(model.config(), info.name).empty()) continue;
                throw Error(path.string() + ": unexpected tensor '" + info.name + "' (not part of a " +
                            model.config().family() + " with this config)");
            }
            if (!pending.count(info.name))
                throw Error(path.string() + ": tensor '" + info.name + "' appears in more than one shard");
            checkShape(file, info, *param);
            bindTo(shared_file, info, *param);
            pending.erase(info.name);
            dtypes.insert(std::string(dtypeName(info.dtype)));
        }
    }
    if (!pending.empty())
        throw Error(dir.string() + ": missing tensor '" + *pending.begin() + "'" +
                    (pending.size() > 1 ? " and " + std::to_string(pending.size() - 1) + " more" : ""));
    std::string summary;
    for (const auto& d : dtypes) summary += (summary.empty() ? "" : "+") + d;
    return summary;
}

PretrainedT5 loadPretrainedT5(const fs::path& requested, const LoadOptions& options) {
    // A hub id ("google/flan-t5-large") names its snapshot in the local Hugging Face cache.
    const fs::path dir = resolveModelFolder(requested.string());
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a folder");
    PretrainedT5 out;
    out.dir = dir;
    out.config = T5Config::fromFile(dir / "config.json");
    out.model = T5Model(out.config);
    out.weight_dtype = loadT5Weights(dir, *out.model);
    out.model->eval();
    for (const auto& p : out.model->parameters()) {
        p.set_requires_grad(false);
        out.parameter_count += p.numel();
        out.weight_bytes += tensorBytes(p);
    }
    if (options.load_tokenizer) out.tokenizer = std::make_shared<Tokenizer>(Tokenizer::fromModelDir(dir));
    return out;
}

void saveT5(const fs::path& dir, const T5ModelImpl& model, DType dtype) {
    fs::create_directories(dir);
    std::vector<torch::Tensor> keep;  // contiguous copies must outlive the write
    std::vector<TensorToWrite> tensors;
    for (const auto& p : model.named_parameters(true)) {
        keep.push_back(p.value().detach().to(torchType(dtype, "saveT5")).contiguous());
        tensors.push_back({p.key(), dtype, keep.back().sizes().vec(), keep.back().data_ptr()});
    }
    writeSafetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
    writeFileAtomically(dir / "config.json", model.config().toJsonText());
}

}  // namespace phatgoose
