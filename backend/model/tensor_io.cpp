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

}  // namespace phatgoose
