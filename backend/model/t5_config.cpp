#include "model/t5_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "error.h"

namespace phatgoose {
namespace {

using nlohmann::json;

std::string layerPrefix(Stack stack, int64_t block, int64_t layer) {
    return std::string(stack == Stack::Encoder ? "encoder" : "decoder") + ".block." + std::to_string(block) +
           ".layer." + std::to_string(layer) + ".";
}

int64_t readPositive(const json& j, const char* key, int64_t fallback, bool required,
                     const std::string& file) {
    if (!j.contains(key)) {
        if (required) throw Error(file + ": missing required key \"" + key + "\"");
        return fallback;
    }
    const json& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (int64_t(1) << 31))
        throw Error(file + ": \"" + key + "\" must be a positive integer, got " + v.dump());
    return v.get<int64_t>();
}

int64_t readTokenId(const json& j, const char* key, int64_t fallback, const std::string& file) {
    if (!j.contains(key) || j.at(key).is_null()) return fallback;
    const json& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
        throw Error(file + ": \"" + key + "\" must be a non-negative integer, got " + v.dump());
    return v.get<int64_t>();
}

void parseFeedForward(const json& j, T5Config& c, const std::string& file) {
    if (j.contains("feed_forward_proj") && !j.at("feed_forward_proj").is_string())
        throw Error(file + ": \"feed_forward_proj\" must be a string");
    c.feed_forward_proj = j.value("feed_forward_proj", std::string("relu"));
    std::string act = c.feed_forward_proj;
    c.gated = act.rfind("gated-", 0) == 0;
    if (c.gated) act = act.substr(6);
    if (act == "relu") {
        c.activation = FeedForwardActivation::Relu;
    } else if (act == "gelu") {
        // Hugging Face maps "gated-gelu" to the tanh approximation (gelu_new), plain "gelu" to the exact one.
        c.activation = c.gated ? FeedForwardActivation::GeluTanh : FeedForwardActivation::Gelu;
    } else if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
        c.activation = FeedForwardActivation::GeluTanh;
    } else {
        throw Error(file + ": unsupported \"feed_forward_proj\": \"" + c.feed_forward_proj +
                    "\" (expected relu, gelu, gated-gelu or gated-relu)");
    }
}

}  // namespace

std::string T5Config::family() const {
    std::string act = activation == FeedForwardActivation::Relu ? "relu" : "gelu";
    return std::string(gated ? "T5 v1.1 (gated-" : "T5 v1.0 (") + act + ", " +
           (tie_word_embeddings ? "tied" : "untied") + " embeddings)";
}

T5Config T5Config::fromJsonText(const std::string& text, const std::string& file) {
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(file + ": malformed JSON");
    if (!j.is_object()) throw Error(file + ": expected a JSON object");
    if (j.contains("model_type") && j.at("model_type") != "t5")
        throw Error(file + ": model_type is " + j.at("model_type").dump() + ", expected \"t5\"");
    T5Config c;
    c.vocab_size = readPositive(j, "vocab_size", 0, true, file);
    c.d_model = readPositive(j, "d_model", 0, true, file);
    c.d_kv = readPositive(j, "d_kv", 0, true, file);
    c.d_ff = readPositive(j, "d_ff", 0, true, file);
    c.num_layers = readPositive(j, "num_layers", 0, true, file);
    c.num_decoder_layers = readPositive(j, "num_decoder_layers", c.num_layers, false, file);
    c.num_heads = readPositive(j, "num_heads", 0, true, file);
    c.relative_attention_num_buckets = readPositive(j, "relative_attention_num_buckets", 32, false, file);
    c.relative_attention_max_distance = readPositive(j, "relative_attention_max_distance", 128, false, file);
    if (j.contains("layer_norm_epsilon")) {
        if (!j.at("layer_norm_epsilon").is_number() || j.at("layer_norm_epsilon").get<double>() <= 0)
            throw Error(file + ": \"layer_norm_epsilon\" must be a positive number");
        c.layer_norm_epsilon = j.at("layer_norm_epsilon").get<double>();
    }
    if (j.contains("dropout_rate")) {
        const json& p = j.at("dropout_rate");
        if (!p.is_number() || p.get<double>() < 0 || p.get<double>() >= 1)
            throw Error(file + ": \"dropout_rate\" must be a number in [0, 1)");
        c.dropout_rate = p.get<double>();
    }
    parseFeedForward(j, c, file);
    if (j.contains("tie_word_embeddings") && !j.at("tie_word_embeddings").is_boolean())
        throw Error(file + ": \"tie_word_embeddings\" must be true or false");
    c.tie_word_embeddings = j.value("tie_word_embeddings", true);
    c.decoder_start_token_id = readTokenId(j, "decoder_start_token_id", 0, file);
    c.pad_token_id = readTokenId(j, "pad_token_id", 0, file);
    c.eos_token_id = readTokenId(j, "eos_token_id", 1, file);
    for (int64_t id : {c.decoder_start_token_id, c.pad_token_id, c.eos_token_id})
        if (id >= c.vocab_size)
            throw Error(file + ": special token id " + std::to_string(id) + " >= vocab_size");
    if (c.relative_attention_num_buckets < 4)
        throw Error(file + ": \"relative_attention_num_buckets\" must be at least 4");
    return c;
}

T5Config T5Config::fromFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot open (missing config.json?)");
    std::stringstream buffer;
    buffer << in.rdbuf();
    return fromJsonText(buffer.str(), path.string());
}

std::string T5Config::toJsonText() const {
    json j = {{"architectures", {"T5ForConditionalGeneration"}},
              {"model_type", "t5"},
              {"is_encoder_decoder", true},
              {"vocab_size", vocab_size},
              {"d_model", d_model},
              {"d_kv", d_kv},
              {"d_ff", d_ff},
              {"num_layers", num_layers},
              {"num_decoder_layers", num_decoder_layers},
              {"num_heads", num_heads},
              {"relative_attention_num_buckets", relative_attention_num_buckets},
              {"relative_attention_max_distance", relative_attention_max_distance},
              {"layer_norm_epsilon", layer_norm_epsilon},
              {"feed_forward_proj", feed_forward_proj},
              {"tie_word_embeddings", tie_word_embeddings},
              {"decoder_start_token_id", decoder_start_token_id},
              {"pad_token_id", pad_token_id},
              {"eos_token_id", eos_token_id},
              {"dropout_rate", dropout_rate},
              {"torch_dtype", "float32"}};
    return j.dump(2) + "\n";
}

std::vector<LinearSite> t5LinearSites(const T5Config& c) {
    std::vector<LinearSite> sites;
    const int64_t inner = c.innerDim();
    auto add = [&](Stack stack, int64_t block, int64_t layer, const std::string& sub, const std::string& leaf,
                   int64_t d_in, int64_t d_out) {
        LinearSite s;
        s.stack = stack;
        s.block = block;
        s.kind = sub + "." + leaf;
        s.leaf = leaf;
        s.path = layerPrefix(stack, block, layer) + s.kind;
        s.d_in = d_in;
        s.d_out = d_out;
        sites.push_back(s);
    };
    auto addAttention = [&](Stack stack, int64_t block, int64_t layer, const std::string& sub) {
        for (const char* leaf : {"q", "k", "v"}) add(stack, block, layer, sub, leaf, c.d_model, inner);
        add(stack, block, layer, sub, "o", inner, c.d_model);
    };
    auto addFeedForward = [&](Stack stack, int64_t block, int64_t layer) {
        if (c.gated) {
            add(stack, block, layer, "DenseReluDense", "wi_0", c.d_model, c.d_ff);
            add(stack, block, layer, "DenseReluDense", "wi_1", c.d_model, c.d_ff);
        } else {
            add(stack, block, layer, "DenseReluDense", "wi", c.d_model, c.d_ff);
        }
        add(stack, block, layer, "DenseReluDense", "wo", c.d_ff, c.d_model);
    };
    for (int64_t b = 0; b < c.num_layers; ++b) {
        addAttention(Stack::Encoder, b, 0, "SelfAttention");
        addFeedForward(Stack::Encoder, b, 1);
    }
    for (int64_t b = 0; b < c.num_decoder_layers; ++b) {
        addAttention(Stack::Decoder, b, 0, "SelfAttention");
        addAttention(Stack::Decoder, b, 1, "EncDecAttention");
        addFeedForward(Stack::Decoder, b, 2);
    }
    return sites;
}

std::vector<WeightSpec> t5WeightTable(const T5Config& c) {
    std::vector<WeightSpec> table;
    table.push_back({"shared.weight", {c.vocab_size, c.d_model}});
    for (const LinearSite& s : t5LinearSites(c)) table.push_back({s.path + ".weight", {s.d_out, s.d_in}});
    for (Stack stack : {Stack::Encoder, Stack::Decoder}) {
        const bool enc = stack == Stack::Encoder;
        const std::string name = enc ? "encoder" : "decoder";
        const int64_t blocks = enc ? c.num_layers : c.num_decoder_layers;
        table.push_back({layerPrefix(stack, 0, 0) + "SelfAttention.relative_attention_bias.weight",
                         {c.relative_attention_num_buckets, c.num_heads}});
        for (int64_t b = 0; b < blocks; ++b)
            for (int64_t l = 0; l < (enc ? 2 : 3); ++l)
                table.push_back({layerPrefix(stack, b, l) + "layer_norm.weight", {c.d_model}});
        table.push_back({name + ".final_layer_norm.weight", {c.d_model}});
    }
    if (!c.tie_word_embeddings) table.push_back({"lm_head.weight", {c.vocab_size, c.d_model}});
    return table;
}

std::string ignorableWeightReason(const T5Config& c, const std::string& name) {
    if (name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight")
        return "an alias of shared.weight";
    if (name == "lm_head.weight" && c.tie_word_embeddings) return "tied to shared.weight";
    if (name == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight")
        return "unused: cross-attention has no position bias";
    return "";
}

}  // namespace phatgoose
