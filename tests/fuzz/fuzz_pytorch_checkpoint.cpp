// libFuzzer target for the PyTorch checkpoint reader. Every input goes through both entry points: the whole
// reader (zip directory, markers, data.pkl, tensor checks) on the input as a file held in memory, and the
// pickle interpreter on the input as a bare data.pkl, which the fuzzer could hardly reach through a zip
// whose CRC and sizes it would have to keep consistent. A phatgoose::Error is the reader doing its job; any
// other exception, a crash, a hang or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "error.h"
#include "model/pytorch_checkpoint.h"

namespace {

// Touch what a loader would use, so that a tensor accepted with inconsistent fields shows up.
void checkAccepted(const std::vector<phatgoose::CheckpointTensor>& tensors, size_t file_size) {
    for (const phatgoose::CheckpointTensor& tensor : tensors) {
        uint64_t numel = 1;
        for (int64_t dim : tensor.shape) {
            if (dim < 0) __builtin_trap();
            numel *= static_cast<uint64_t>(dim);
        }
        if (numel * phatgoose::dtypeSize(tensor.dtype) != tensor.byte_size) __builtin_trap();
        if (tensor.file_offset > file_size || tensor.byte_size > file_size - tensor.file_offset)
            __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    try {
        checkAccepted(phatgoose::parsePytorchCheckpoint(bytes, "fuzz"), size);
    } catch (const phatgoose::Error&) {
    }
    try {
        phatgoose::checkPickleForFuzzing(data, size);
    } catch (const phatgoose::Error&) {
    }
    return 0;
}
