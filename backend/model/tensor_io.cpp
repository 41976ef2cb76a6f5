#include "model/tensor_io.h"

#include "error.h"

namespace phatgoose {

torch::ScalarType torchType(DType dtype, const std::string& what) {
    switch (dtype) {
        case DType::F32:
            return torch::kFloat;
        case DType::F16:
            return torch::kHalf;
        case DType::BF16:
            return torch::kBFloat16;
        default:
            throw Error(what + " has dtype " + std::string(dtypeName(dtype)) + "; expected F32, F16 or BF16");
    }
}

torch::Tensor readAsFloat32(DType dtype, const std::vector<int64_t>& shape,
                            const std::function<void(void*)>& read, const std::string& what) {
    torch::Tensor raw = torch::empty(shape, torch::TensorOptions().dtype(torchType(dtype, what)));
    read(raw.data_ptr());
    return raw.to(torch::kFloat);
}

torch::Tensor mappedTensor(const std::shared_ptr<const SafetensorsFile>& file, const TensorInfo& info) {
    // The refusal's message is built only when needed: a large library maps some 140,000 tensors.
    const bool computable = info.dtype == DType::F32 || info.dtype == DType::F16 || info.dtype == DType::BF16;
    const auto options = torch::TensorOptions().dtype(
        computable ? torchType(info.dtype, {})
                   : torchType(info.dtype, file->path().string() + ": tensor '" + info.name + "'"));
    if (info.numel() == 0) return torch::empty(info.shape, options);
    if (void* data = file->mapped(info))
        return torch::from_blob(
            data, info.shape, [keep = file](void*) {}, options);
    torch::Tensor raw = torch::empty(info.shape, options);
    file->read(info, raw.data_ptr());
    return raw;
}

bool keepsStoredDtype(const std::string& name, size_t dims) {
    return dims == 2 && name.find("relative_attention_bias") == std::string::npos;
}

int64_t tensorBytes(const torch::Tensor& t) {
    return t.numel() * int64_t(t.element_size());
}

}  // namespace phatgoose
