#pragma once
// T5ForConditionalGeneration: the shared embedding, the encoder and decoder stacks, and the LM head.
#include <torch/torch.h>

#include <vector>

#include "model/t5_modules.h"

namespace phatgoose {

// Everything the decoder needs to continue from where it stopped: one AttentionCache per decoder block.
struct DecoderCache {
    std::vector<AttentionCache> layers;
    int64_t length() const { return layers.empty() ? 0 : layers.front().length; }
    // Keeps the batch rows named by `rows` (beam search re-ordering), in that order.
    void selectRows(const torch::Tensor& rows);
};

class T5ModelImpl : public torch::nn::Module {
public:
    explicit T5ModelImpl(const T5Config& config);
    const T5Config& config() const { return config_; }

    // input_ids, mask: [batch, len] int64 (mask 1 = token, 0 = padding). Returns [batch, len, d_model].
    torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& mask);

    // decoder_ids: [batch, steps]. Returns the final decoder states [batch, steps, d_model]. With a cache,
    // the steps continue after the cached ones and are appended to the cache.
    torch::Tensor decodeHidden(const torch::Tensor& decoder_ids, const torch::Tensor& encoder_states,
                               const torch::Tensor& encoder_mask, DecoderCache* cache = nullptr);
    // [batch, steps, d_model] -> [batch, steps, vocab_size]
    torch::Tensor lmHead(const torch::Tensor& decoder_states) const;
    torch::Tensor decode(const torch::Tensor& decoder_ids, const torch::Tensor& encoder_states,
                         const torch::Tensor& encoder_mask, DecoderCache* cache = nullptr) {
        return lmHead(decodeHidden(decoder_ids, encoder_states, encoder_mask, cache));
    }

    // Every T5Linear by its Hugging Face path ("encoder.block.0.layer.0.SelfAttention.q"), in the order of
    // t5LinearSites(config).
    std::vector<std::pair<LinearSite, T5Linear>> linears() const;

    // The dropout every layer applies while the model is in training mode (config().dropout_rate to begin
    // with); trainers may override it for a run and put it back.
    void setDropoutRate(double rate);
    double dropoutRate() const { return dropout_rate_; }

    torch::nn::Embedding shared{nullptr};
    T5Stack encoder{nullptr}, decoder{nullptr};
    torch::Tensor lm_head_weight;  // registered as "lm_head.weight" only when untied

private:
    T5Config config_;
    double dropout_rate_;  // after the embeddings and the final layer norms
};
TORCH_MODULE(T5Model);

// [batch, len] 1/0 mask -> additive [batch, 1, 1, len] bias: 0 for tokens, the lowest float for padding.
torch::Tensor maskToBias(const torch::Tensor& mask);

}  // namespace phatgoose
