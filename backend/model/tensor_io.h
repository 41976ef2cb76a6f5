#pragma once
// Raw little-endian tensor bytes from any file format (safetensors, PyTorch checkpoints) into float32
// LibTorch tensors, and back: the one place that maps the formats' dtypes to LibTorch's.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace phatgoose {

// The LibTorch dtype of a stored F32, F16 or BF16 tensor; throws phatgoose::Error naming `what` for others.
torch::ScalarType torchType(DType dtype, const std::string& what);

// A float32 tensor of `shape` from bytes stored as `dtype`: `read` fills a buffer of the stored size.
torch::Tensor readAsFloat32(DType dtype, const std::vector<int64_t>& shape,
                            const std::function<void(void*)>& read, const std::string& what);

}  // namespace phatgoose
