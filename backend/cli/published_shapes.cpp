#include "cli/published_shapes.h"

namespace phatgoose {
namespace {

struct Shape {
    const char* name;
    const char* config_json;
};

const Shape kShapes[] = {
    {"paper", R"({"model_type": "t5", "vocab_size": 32128, "d_model": 2048, "d_kv": 64, "d_ff": 5120,
        "num_layers": 24, "num_heads": 32, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false})"},
    {"large", R"({"model_type": "t5", "vocab_size": 32128, "d_model": 1024, "d_kv": 64, "d_ff": 4096,
        "num_layers": 24, "num_heads": 16, "feed_forward_proj": "relu", "tie_word_embeddings": true})"},
    {"base", R"({"model_type": "t5", "vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 3072,
        "num_layers": 12, "num_heads": 12, "feed_forward_proj": "relu", "tie_word_embeddings": true})"},
    {"flan-small", R"({"model_type": "t5", "vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 1024,
        "num_layers": 8, "num_heads": 6, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false})"},
};

}  // namespace

std::optional<T5Config> publishedT5Shape(const std::string& name) {
    for (const Shape& s : kShapes)
        if (name == s.name) return T5Config::fromJsonText(s.config_json, name + "-shaped config");
    return std::nullopt;
}

}  // namespace phatgoose
