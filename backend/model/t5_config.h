#pragma once
// T5's config.json, as Hugging Face defines it, and the one central table of weight names and shapes
// that the loader, the fixture writer and the tests all use.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace phatgoose {

enum class FeedForwardActivation { Relu, Gelu, GeluTanh };

struct T5Config {
    int64_t vocab_size = 32128;
    int64_t d_model = 512;
    int64_t d_kv = 64;
    int64_t d_ff = 2048;
    int64_t num_layers = 6;
    int64_t num_decoder_layers = 6;
    int64_t num_heads = 8;
    int64_t relative_attention_num_buckets = 32;
    int64_t relative_attention_max_distance = 128;
    double layer_norm_epsilon = 1e-6;
    FeedForwardActivation activation = FeedForwardActivation::Relu;
    bool gated = false;               // v1.1: wo(act(wi_0 x) * wi_1 x); v1.0: wo(act(wi x))
    bool tie_word_embeddings = true;  // v1.0: the decoder output is scaled by d_model^-0.5 before `shared`
    int64_t decoder_start_token_id = 0;
    int64_t pad_token_id = 0;
    int64_t eos_token_id = 1;
    std::string feed_forward_proj = "relu";  // as written in config.json, for display
    // Hugging Face's default. Applied only while training (Module::train()); inference never drops.
    double dropout_rate = 0.1;

    int64_t innerDim() const { return num_heads * d_kv; }
    std::string family() const;  // "T5 v1.0 (relu, tied)" ...

    // Parses and validates a config.json; errors name the file and the key.
    static T5Config fromFile(const std::filesystem::path& config_json);
    static T5Config fromJsonText(const std::string& text, const std::string& file_label);
    std::string toJsonText() const;  // a Hugging Face-compatible config.json
};

enum class Stack { Encoder, Decoder };

struct WeightSpec {
    std::string name;  // Hugging Face key, e.g. "encoder.block.0.layer.0.SelfAttention.q.weight"
    std::vector<int64_t> shape;
};

// Every parameter a T5ForConditionalGeneration of this config has, in a stable order.
std::vector<WeightSpec> t5WeightTable(const T5Config& config);

// Keys that Hugging Face checkpoints may carry besides the table and that a loader may ignore: the tied
// aliases of `shared` (encoder/decoder.embed_tokens, lm_head when tied) and the unused position bias that
// the original checkpoints store for the decoder's first cross-attention. Returns why, or "" when unknown.
std::string ignorableWeightReason(const T5Config& config, const std::string& name);

// The linear layers of one block that LoRA can target, by their Hugging Face paths.
struct LinearSite {
    std::string path;  // "decoder.block.3.layer.1.EncDecAttention.k"
    Stack stack = Stack::Encoder;
    int64_t block = 0;
    std::string kind;  // "SelfAttention.q", "EncDecAttention.k", "DenseReluDense.wi_0", ...
    std::string leaf;  // "q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"
    int64_t d_in = 0;
    int64_t d_out = 0;
};
std::vector<LinearSite> t5LinearSites(const T5Config& config);

}  // namespace phatgoose
