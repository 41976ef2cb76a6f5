// libFuzzer target for the safetensors header parser. A phatgoose::Error is the parser doing its job;
// any other exception, a crash, a hang or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    try {
        const phatgoose::SafetensorsHeader header = phatgoose::parseSafetensorsHeader(bytes, size, "fuzz");
        // Touch what a loader would use, so a header accepted with inconsistent fields shows up.
        for (const phatgoose::TensorInfo& tensor : header.tensors) {
            if (tensor.end < tensor.begin || header.data_offset + tensor.end > size) __builtin_trap();
            if (header.find(tensor.name) != &tensor) __builtin_trap();
            const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * phatgoose::dtypeSize(tensor.dtype);
            if (tensor.end - tensor.begin != bytes) __builtin_trap();
        }
    } catch (const phatgoose::Error&) {
    }
    return 0;
}
