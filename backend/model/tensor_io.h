#pragma once
// Raw little-endian tensor bytes from any file format (safetensors, PyTorch checkpoints) into float32
// LibTorch tensors, and back: the one place that maps the formats' dtypes to LibTorch's.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace phatgoose {

// The LibTorch dtype of a stored F32, F16 or BF16 tensor; throws phatgoose::Error naming `what` for others.
torch::ScalarType torchType(DType dtype, const std::string& what);

// A float32 tensor of `shape` from bytes stored as `dtype`: `read` fills a buffer of the stored size.
torch::Tensor readAsFloat32(DType dtype, const std::vector<int64_t>& shape,
                            const std::function<void(void*)>& read, const std::string& what);

// A tensor of safetensors `file` in its stored dtype (F32, F16 or BF16), without a copy: a view of the
// file's mapping (SafetensorsFile::mapped) that keeps the file open for as long as the tensor lives. Read
// into fresh memory instead when the bytes are not aligned. Throws naming the file for other dtypes.
torch::Tensor mappedTensor(const std::shared_ptr<const SafetensorsFile>& file, const TensorInfo& info);

// Whether a model tensor is kept in its stored dtype when loaded: the weight matrices (linear layers, the
// embedding, the LM head), which the products read as stored. The small rest (layer norms, relative
// position biases) is widened to float32 once.
bool keepsStoredDtype(const std::string& name, size_t dims);

// Bytes of a tensor's data (numel * element size).
int64_t tensorBytes(const torch::Tensor& t);

}  // namespace phatgoose
