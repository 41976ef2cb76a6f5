#pragma once
// T5 as torch::nn modules whose registered names are the Hugging Face checkpoint keys, so that
// named_parameters() yields exactly "encoder.block.0.layer.0.SelfAttention.q.weight" and loading is by name.
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/t5_config.h"

namespace phatgoose {

// A hook on one linear layer that adds a learned delta to its output: a LoRA expert, a routed mixture of
// experts, a merged delta. The base weight is never modified.
class LinearAdapter {
public:
    virtual ~LinearAdapter() = default;
    // x: [batch, len, d_in]; base: W x, [batch, len, d_out]. Returns the adapted output.
    virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) = 0;
};

// x W^T for x: [..., d_in] float32, weight: [d_out, d_in] F32, BF16 or F16 (model/weight_kernels.h).
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight);

// A bias-free linear layer ("weight": [d_out, d_in]) with an optional adapter.
class T5LinearImpl : public torch::nn::Module {
public:
    T5LinearImpl(int64_t d_in, int64_t d_out);
    torch::Tensor forward(const torch::Tensor& x);
    void setAdapter(std::shared_ptr<LinearAdapter> adapter) { adapter_ = std::move(adapter); }
    const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }
    torch::Tensor weight;

private:
    std::shared_ptr<LinearAdapter> adapter_;
};
TORCH_MODULE(T5Linear);

// RMS norm without mean subtraction or bias: weight * x / sqrt(mean(x^2) + eps).
class T5LayerNormImpl : public torch::nn::Module {
public:
    T5LayerNormImpl(int64_t d_model, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight;

private:
    double eps_;
};
TORCH_MODULE(T5LayerNorm);

// Self-attention keys/values of one decoder layer, grown one step at a time, and the cross-attention
// keys/values, computed once from the encoder output.
struct AttentionCache {
    torch::Tensor self_k, self_v;  // [batch, heads, capacity, d_kv]; valid up to `length`
    int64_t length = 0;
    torch::Tensor cross_k, cross_v;  // [batch, heads, enc_len, d_kv]
};

// Dropout where Hugging Face's T5 applies it, only while `module` is in training mode (Module::train()):
// the forward that inference, evaluation and the parity tests run is untouched.
torch::Tensor trainingDropout(const torch::nn::Module& module, const torch::Tensor& x, double rate);

class T5AttentionImpl : public torch::nn::Module {
public:
    T5AttentionImpl(const T5Config& config, bool has_relative_bias);
    // x: [batch, q_len, d_model]; kv_source: the encoder output for cross-attention, else undefined;
    // bias: [1 or batch, heads, q_len, k_len] position bias plus mask, added to the scores.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& kv_source, const torch::Tensor& bias,
                          AttentionCache* cache);
    T5Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
    torch::nn::Embedding relative_attention_bias{nullptr};  // block 0 only
    double dropout_rate = 0.0;                              // on the attention probabilities

private:
    torch::Tensor splitHeads(const torch::Tensor& x) const;  // [b, l, h*d] -> [b, h, l, d]
    // softmax(query keys^T + bias) values, heads joined again: [b, h, q, d] x [b, h, k, d] -> [b, q, h*d].
    torch::Tensor attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                         const torch::Tensor& bias) const;
    void appendSelf(AttentionCache& cache, const torch::Tensor& k_new, const torch::Tensor& v_new) const;
    int64_t heads_, d_kv_;
};
TORCH_MODULE(T5Attention);

class T5DenseImpl : public torch::nn::Module {
public:
    explicit T5DenseImpl(const T5Config& config);
    torch::Tensor forward(const torch::Tensor& x);
    T5Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
    double dropout_rate = 0.0;  // on the activations, before wo

private:
    torch::Tensor activate(const torch::Tensor& x) const;
    FeedForwardActivation activation_;
};
TORCH_MODULE(T5Dense);

// One pre-norm residual sub-layer: "layer.N" holding a norm and one of SelfAttention, EncDecAttention,
// DenseReluDense.
class T5SubLayerImpl : public torch::nn::Module {
public:
    enum class Kind { SelfAttention, CrossAttention, FeedForward };
    T5SubLayerImpl(const T5Config& config, Kind kind, bool has_relative_bias);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& enc, const torch::Tensor& bias,
                          AttentionCache* cache);
    Kind kind;
    double dropout_rate = 0.0;  // on the sub-layer's output, before the residual sum
    T5Attention attention{nullptr};
    T5Dense dense{nullptr};
    T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5SubLayer);

class T5BlockImpl : public torch::nn::Module {
public:
    T5BlockImpl(const T5Config& config, Stack stack, bool has_relative_bias);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& self_bias, const torch::Tensor& enc,
                          const torch::Tensor& cross_bias, AttentionCache* cache);
    std::vector<T5SubLayer> layers;
};
TORCH_MODULE(T5Block);

class T5StackImpl : public torch::nn::Module {
public:
    T5StackImpl(const T5Config& config, Stack stack);
    std::vector<T5Block> blocks;
    T5LayerNorm final_layer_norm{nullptr};
    // The bucketed relative position bias of block 0, [1, heads, q_len, k_len] for query positions
    // q_offset .. q_offset + q_len - 1 against keys 0 .. k_len - 1.
    torch::Tensor positionBias(int64_t q_offset, int64_t q_len, int64_t k_len) const;

private:
    bool bidirectional_;
    int64_t num_buckets_, max_distance_;
};
TORCH_MODULE(T5Stack);

}  // namespace phatgoose
