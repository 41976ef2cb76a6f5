#include "model/t5_model.h"

#include <cmath>
#include <limits>

#include "error.h"

namespace phatgoose {

void DecoderCache::selectRows(const torch::Tensor& rows) {
    for (AttentionCache& layer : layers) {
        layer.self_k = layer.self_k.index_select(0, rows);
        layer.self_v = layer.self_v.index_select(0, rows);
        layer.cross_k = layer.cross_k.index_select(0, rows);
        layer.cross_v = layer.cross_v.index_select(0, rows);
    }
}

torch::Tensor maskToBias(const torch::Tensor& mask) {
    torch::Tensor m = mask.to(torch::kFloat).unsqueeze(1).unsqueeze(1);  // [batch, 1, 1, len]
    return (1.0 - m) * std::numeric_limits<float>::lowest();
}

T5ModelImpl::T5ModelImpl(const T5Config& config) : config_(config), dropout_rate_(config.dropout_rate) {
    // Given an (uninitialised) weight, the embedding skips drawing vocab x d_model normal values that loading
    // or initT5Weights overwrites anyway: for t5-base that draw was most of the model folder's open time.
    shared = register_module(
        "shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(config.vocab_size, config.d_model)
                                           ._weight(torch::empty({config.vocab_size, config.d_model}))));
    encoder = register_module("encoder", T5Stack(config, Stack::Encoder));
    decoder = register_module("decoder", T5Stack(config, Stack::Decoder));
    if (!config.tie_word_embeddings) {
        // A child named "lm_head" with a "weight" parameter gives the key "lm_head.weight".
        auto head = register_module("lm_head", std::make_shared<torch::nn::Module>());
        lm_head_weight =
            head->register_parameter("weight", torch::empty({config.vocab_size, config.d_model}));
    }
    // A model starts in inference mode (LibTorch's modules start in training mode): only a trainer's
    // updates switch dropout on.
    eval();
}

void T5ModelImpl::setDropoutRate(double rate) {
    if (!(rate >= 0 && rate < 1)) throw Error("dropout rate must be in [0, 1), got " + std::to_string(rate));
    dropout_rate_ = rate;
    for (T5Stack stack : {encoder, decoder})
        for (T5Block& block : stack->blocks)
            for (T5SubLayer& layer : block->layers) {
                layer->dropout_rate = rate;
                if (layer->attention) layer->attention->dropout_rate = rate;
                if (layer->dense) layer->dense->dropout_rate = rate;
            }
}

torch::Tensor T5ModelImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& mask) {
    const int64_t len = input_ids.size(1);
    torch::Tensor bias = encoder->positionBias(0, len, len) + maskToBias(mask);  // [batch, heads, len, len]
    torch::Tensor h = shared->forward(input_ids).to(torch::kFloat);  // a BF16/F16 table widens per row
    h = trainingDropout(*this, h, dropout_rate_);
    for (auto& block : encoder->blocks)
        h = block->forward(h, bias, torch::Tensor(), torch::Tensor(), nullptr);
    return trainingDropout(*this, encoder->final_layer_norm->forward(h), dropout_rate_);
}

torch::Tensor T5ModelImpl::decodeHidden(const torch::Tensor& decoder_ids, const torch::Tensor& encoder_states,
                                        const torch::Tensor& encoder_mask, DecoderCache* cache) {
    const int64_t steps = decoder_ids.size(1);
    const int64_t past = cache ? cache->length() : 0;
    if (cache && cache->layers.empty()) cache->layers.resize(decoder->blocks.size());
    torch::Tensor self_bias =
        decoder->positionBias(past, steps, past + steps);  // [1, heads, steps, past+steps]
    if (steps > 1) {
        // Causal: query i (at position past + i) sees keys 0 .. past + i.
        torch::Tensor future = torch::ones({steps, past + steps}, torch::kBool).triu(past + 1);
        self_bias = self_bias.masked_fill(future, std::numeric_limits<float>::lowest());
    }
    torch::Tensor cross_bias = maskToBias(encoder_mask);
    torch::Tensor h = trainingDropout(*this, shared->forward(decoder_ids).to(torch::kFloat), dropout_rate_);
    for (size_t i = 0; i < decoder->blocks.size(); ++i) {
        AttentionCache* layer_cache = cache ? &cache->layers[i] : nullptr;
        h = decoder->blocks[i]->forward(h, self_bias, encoder_states, cross_bias, layer_cache);
    }
    return trainingDropout(*this, decoder->final_layer_norm->forward(h), dropout_rate_);
}

torch::Tensor T5ModelImpl::lmHead(const torch::Tensor& states) const {
    if (config_.tie_word_embeddings)
        return project(states * std::pow(double(config_.d_model), -0.5), shared->weight);
    return project(states, lm_head_weight);
}

std::vector<std::pair<LinearSite, T5Linear>> T5ModelImpl::linears() const {
    std::vector<std::pair<LinearSite, T5Linear>> out;
    for (const LinearSite& site : t5LinearSites(config_)) {
        const T5Stack& stack = site.stack == Stack::Encoder ? encoder : decoder;
        const T5Block& block = stack->blocks.at(site.block);
        const std::string sub = site.kind.substr(0, site.kind.find('.'));
        T5Linear linear{nullptr};
        if (sub == "DenseReluDense") {
            const T5Dense& d = block->layers.back()->dense;
            linear = site.leaf == "wi"     ? d->wi
                     : site.leaf == "wi_0" ? d->wi_0
                     : site.leaf == "wi_1" ? d->wi_1
                                           : d->wo;
        } else {
            const T5Attention& a = block->layers[sub == "SelfAttention" ? 0 : 1]->attention;
            linear = site.leaf == "q" ? a->q : site.leaf == "k" ? a->k : site.leaf == "v" ? a->v : a->o;
        }
        out.emplace_back(site, linear);
    }
    return out;
}

}  // namespace phatgoose
