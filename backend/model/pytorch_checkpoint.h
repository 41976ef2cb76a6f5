#pragma once
// PyTorch's zip checkpoint format (torch.save since torch 1.6), read and written without Python or
// LibTorch. The file is a stored (uncompressed) zip archive, ZIP64 when large, whose entries share one top
// folder: <top>/data.pkl (a pickle describing the state dict), <top>/version, <top>/data/<key> (the raw
// little-endian bytes of one storage each) and a few optional markers.
//
// Nothing in a file is ever executed. The pickle is interpreted by an allowlist: containers, numbers,
// strings, collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the Float/Half/BFloat16 storage
// types. Any other global is refused by name, and every offset, size, shape and stride is checked against
// the archive before a byte of tensor data is trusted. Every failure is a phatgoose::Error naming the file
// (and the tensor where there is one).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/safetensors.h"

namespace phatgoose {

struct CheckpointTensor {
    std::string name;          // the state-dict key
    DType dtype = DType::F32;  // F32, F16 or BF16
    std::vector<int64_t> shape;
    std::string storage;       // the storage record's key ("0", "1", ...)
    uint64_t file_offset = 0;  // absolute offset in the file of the tensor's first byte
    uint64_t byte_size = 0;    // prod(shape) * dtype size
};

class PytorchCheckpoint {
public:
    // Parses the zip directory and data.pkl, validates every tensor; reads no tensor data.
    // Throws phatgoose::Error naming the file and the problem.
    static PytorchCheckpoint open(const std::filesystem::path& file);

    PytorchCheckpoint(PytorchCheckpoint&& other) noexcept;
    PytorchCheckpoint& operator=(PytorchCheckpoint&& other) noexcept;
    PytorchCheckpoint(const PytorchCheckpoint&) = delete;
    PytorchCheckpoint& operator=(const PytorchCheckpoint&) = delete;
    ~PytorchCheckpoint();

    const std::filesystem::path& file() const { return file_; }
    uint64_t fileSize() const { return file_size_; }
    // The top-level dict's entries in file order; open() refuses a value that is not a tensor.
    const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
    const CheckpointTensor* find(const std::string& name) const;  // nullptr when absent

    // Reads the tensor's bytes (little-endian, as stored) into `out` (byte_size bytes).
    void read(const CheckpointTensor& tensor, void* out) const;
    // Reads bytes [byte_offset, byte_offset + size) of the tensor, for callers that convert a large
    // tensor piece by piece with bounded memory.
    void read(const CheckpointTensor& tensor, uint64_t byte_offset, uint64_t size, void* out) const;

private:
    PytorchCheckpoint() = default;

    std::filesystem::path file_;
    int fd_ = -1;
    uint64_t file_size_ = 0;
    std::vector<CheckpointTensor> tensors_;
    std::unordered_map<std::string, size_t> index_;
};

// The whole reader on a file held in memory (`label` names it in messages): the same checks as open().
// For the fuzzer and for tests.
std::vector<CheckpointTensor> parsePytorchCheckpoint(std::string_view file_bytes, const std::string& label);

// Runs the pickle interpreter and the state-dict checks on a bare data.pkl, pretending that every storage
// it names exists with exactly the size it claims. For the fuzzer: it reaches the interpreter without
// having to keep a zip directory consistent. Throws phatgoose::Error like the reader.
void checkPickleForFuzzing(const uint8_t* data, size_t size);

struct TensorToSave {
    std::string name;
    DType dtype = DType::F32;  // F32, F16 or BF16
    std::vector<int64_t> shape;
    const void* data = nullptr;  // prod(shape) * dtype size bytes, little-endian
};

struct CheckpointWriteOptions {
    // Writes ZIP64 records even where 32-bit fields would do, so tests can cover them without gigabytes.
    bool force_zip64 = false;
};

// Writes a checkpoint in the layout torch.save uses (stored zip, top folder "archive", a protocol 2
// data.pkl holding an OrderedDict of tensors rebuilt with _rebuild_tensor_v2, one storage per tensor,
// version "3\n", 64-byte aligned records, ZIP64 when an offset or size needs it), atomically.
void writePytorchCheckpoint(const std::filesystem::path& file, const std::vector<TensorToSave>& tensors,
                            const CheckpointWriteOptions& options = {});

}  // namespace phatgoose
