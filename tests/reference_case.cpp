#include "reference_case.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace phatgoose::testing {

std::filesystem::path referenceRoot() {
    const char* env = std::getenv("PHATGOOSE_REFERENCE_DIR");
    if (!env || !*env)
        throw std::runtime_error("PHATGOOSE_REFERENCE_DIR is not set (run the tests through ctest)");
    std::filesystem::path root(env);
    if (!std::filesystem::is_directory(root))
        throw std::runtime_error("reference folder " + root.string() + " is missing (shared/reference)");
    return root;
}

const std::vector<std::string>& referenceCaseNames() {
    static const std::vector<std::string> names{"t5v10_relu_tied", "t5v11_gatedgelu_untied"};
    return names;
}

static ReferenceOutputs outputs(const nlohmann::json& j) {
    return {j.at("encoder_last_hidden_state").get<std::vector<float>>(),
            j.at("logits").get<std::vector<float>>(), j.at("greedy_ids").get<std::vector<int64_t>>()};
}

ReferenceCase loadReferenceCase(const std::string& name) {
    ReferenceCase c;
    c.name = name;
    c.dir = referenceRoot() / name;
    std::ifstream in(c.dir / "reference.json");
    if (!in) throw std::runtime_error("cannot open " + (c.dir / "reference.json").string());
    nlohmann::json j = nlohmann::json::parse(in);
    c.text = j.at("text").get<std::string>();
    c.text_pieces = j.at("text_pieces").get<std::vector<std::string>>();
    c.input_ids = j.at("input_ids").get<std::vector<int64_t>>();
    c.decoder_input_ids = j.at("decoder_input_ids").get<std::vector<int64_t>>();
    c.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
    c.base = outputs(j.at("base"));
    c.lora = outputs(j.at("lora"));
    return c;
}

}  // namespace phatgoose::testing
