#pragma once
// The independent reference cases in shared/reference (Hugging Face transformers + PEFT outputs).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace phatgoose::testing {

struct ReferenceOutputs {
    std::vector<float> encoder_last_hidden_state;  // [input_len * d_model]
    std::vector<float> logits;                     // [decoder_len * vocab]
    std::vector<int64_t> greedy_ids;
};

struct ReferenceCase {
    std::string name;
    std::filesystem::path dir;  // holds model/, lora/, reference.json
    std::string text;
    std::vector<std::string> text_pieces;
    std::vector<int64_t> input_ids, decoder_input_ids;
    int64_t max_new_tokens = 0;
    ReferenceOutputs base, lora;
};

// The folder from PHATGOOSE_REFERENCE_DIR; throws (failing the test) when it is not set or missing.
std::filesystem::path referenceRoot();
ReferenceCase loadReferenceCase(const std::string& name);
const std::vector<std::string>& referenceCaseNames();

}  // namespace phatgoose::testing
