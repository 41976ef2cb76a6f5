#include "model/t5_modules.h"

#include <cmath>

#include "model/pointwise_kernels.h"
#include "model/weight_kernels.h"

namespace phatgoose {
namespace {

bool needsNoGradient(const torch::Tensor& t) {
    return !torch::GradMode::is_enabled() || !t.requires_grad();
}

// The one-pass kernels (model/pointwise_kernels.h) have no backward: they serve passes that need no gradient.
bool fusable(const torch::Tensor& t) {
    return t.scalar_type() == torch::kFloat && t.is_contiguous() && needsNoGradient(t);
}

// From this many query rows on (prefill), attention runs one product per head on views of the projections;
// below it (decoding, one row) two batched products cost less than 4 x heads product calls.
constexpr int64_t kPerHeadQueryRows = 8;

}  // namespace

torch::Tensor trainingDropout(const torch::nn::Module& module, const torch::Tensor& x, double rate) {
    return module.is_training() && rate > 0 ? torch::dropout(x, rate, /*train=*/true) : x;
}

T5LinearImpl::T5LinearImpl(int64_t d_in, int64_t d_out) {
    weight = register_parameter("weight", torch::empty({d_out, d_in}));
}

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight) {
    return linearProduct(x, weight);
}

torch::Tensor T5LinearImpl::forward(const torch::Tensor& x) {
    torch::Tensor base = project(x, weight);
    return adapter_ ? adapter_->forward(x, base) : base;
}

T5LayerNormImpl::T5LayerNormImpl(int64_t d_model, double eps) : eps_(eps) {
    weight = register_parameter("weight", torch::ones({d_model}));
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
    if (fusable(x) && fusable(weight)) return rmsNorm(x, weight, eps_);
    torch::Tensor variance = x.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (x * torch::rsqrt(variance + eps_));
}

T5AttentionImpl::T5AttentionImpl(const T5Config& c, bool has_relative_bias)
    : dropout_rate(c.dropout_rate), heads_(c.num_heads), d_kv_(c.d_kv) {
    q = register_module("q", T5Linear(c.d_model, c.innerDim()));
    k = register_module("k", T5Linear(c.d_model, c.innerDim()));
    v = register_module("v", T5Linear(c.d_model, c.innerDim()));
    o = register_module("o", T5Linear(c.innerDim(), c.d_model));
    if (has_relative_bias)
        relative_attention_bias = register_module(
            "relative_attention_bias", torch::nn::Embedding(c.relative_attention_num_buckets, c.num_heads));
}

torch::Tensor T5AttentionImpl::splitHeads(const torch::Tensor& x) const {
    return x.view({x.size(0), x.size(1), heads_, d_kv_}).transpose(1, 2);
}

void T5AttentionImpl::appendSelf(AttentionCache& cache, const torch::Tensor& k_new,
                                 const torch::Tensor& v_new) const {
    const int64_t needed = cache.length + k_new.size(2);
    if (!cache.self_k.defined() || cache.self_k.size(2) < needed) {
        // Grow geometrically so that decoding n tokens copies O(n) cache entries, not O(n^2).
        const int64_t capacity = std::max<int64_t>(needed, std::max<int64_t>(32, 2 * cache.length));
        auto grow = [&](const torch::Tensor& old) {
            torch::Tensor fresh = torch::empty({k_new.size(0), heads_, capacity, d_kv_}, k_new.options());
            if (cache.length > 0) fresh.narrow(2, 0, cache.length).copy_(old.narrow(2, 0, cache.length));
            return fresh;
        };
        cache.self_k = grow(cache.self_k);
        cache.self_v = grow(cache.self_v);
    }
    cache.self_k.narrow(2, cache.length, k_new.size(2)).copy_(k_new);
    cache.self_v.narrow(2, cache.length, v_new.size(2)).copy_(v_new);
    cache.length = needed;
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& kv_source,
                                       const torch::Tensor& bias, AttentionCache* cache) {
    const bool cross = kv_source.defined();
    torch::Tensor query = splitHeads(q->forward(x));  // [batch, heads, q_len, d_kv]
    torch::Tensor keys, values;                       // [batch, heads, k_len, d_kv]
    if (cross) {
        if (cache && cache->cross_k.defined()) {
            keys = cache->cross_k;
            values = cache->cross_v;
        } else {
            keys = splitHeads(k->forward(kv_source));
            values = splitHeads(v->forward(kv_source));
            if (cache) {
                cache->cross_k = keys;
                cache->cross_v = values;
            }
        }
    } else {
        keys = splitHeads(k->forward(x));
        values = splitHeads(v->forward(x));
        if (cache) {
            appendSelf(*cache, keys, values);
            keys = cache->self_k.narrow(2, 0, cache->length);
            values = cache->self_v.narrow(2, 0, cache->length);
        }
    }
    return o->forward(attend(query, keys, values, bias));
}

// T5 does not scale the scores by 1/sqrt(d_kv): the initialisation absorbs it.
torch::Tensor T5AttentionImpl::attend(const torch::Tensor& query, const torch::Tensor& keys,
                                      const torch::Tensor& values, const torch::Tensor& bias) const {
    const int64_t batch = query.size(0), q_len = query.size(2), k_len = keys.size(2);
    const bool inference = needsNoGradient(query) && needsNoGradient(keys) && needsNoGradient(values) &&
                           !(is_training() && dropout_rate > 0);
    if (inference && q_len >= kPerHeadQueryRows && query.scalar_type() == torch::kFloat) {
        // Each head's [len, d_kv] is a strided view BLAS reads as it is (row stride heads * d_kv): no copies
        // per head, and each head's context lands directly in its columns of the output.
        torch::Tensor scores = torch::empty({batch, heads_, q_len, k_len}, query.options());
        for (int64_t n = 0; n < batch; ++n)
            for (int64_t h = 0; h < heads_; ++h) {
                torch::Tensor out = scores[n][h];
                torch::mm_out(out, query[n][h], keys[n][h].t());
            }
        biasSoftmaxInPlace(scores, bias);
        torch::Tensor context = torch::empty({batch, q_len, heads_ * d_kv_}, query.options());
        for (int64_t n = 0; n < batch; ++n)
            for (int64_t h = 0; h < heads_; ++h) {
                torch::Tensor out = context[n].narrow(1, h * d_kv_, d_kv_);
                torch::mm_out(out, scores[n][h], values[n][h]);
            }
        return context;  // [batch, q_len, heads * d_kv]
    }
    torch::Tensor scores = torch::matmul(query, keys.transpose(-1, -2));  // [batch, heads, q_len, k_len]
    if (fusable(scores)) {
        biasSoftmaxInPlace(scores, bias);
    } else {
        if (bias.defined()) scores = scores + bias;
        scores = torch::softmax(scores, -1);
    }
    scores = trainingDropout(*this, scores, dropout_rate);
    torch::Tensor context = torch::matmul(scores, values);  // [batch, heads, q_len, d_kv]
    return context.transpose(1, 2).reshape({batch, q_len, heads_ * d_kv_});
}

T5DenseImpl::T5DenseImpl(const T5Config& c) : dropout_rate(c.dropout_rate), activation_(c.activation) {
    if (c.gated) {
        wi_0 = register_module("wi_0", T5Linear(c.d_model, c.d_ff));
        wi_1 = register_module("wi_1", T5Linear(c.d_model, c.d_ff));
    } else {
        wi = register_module("wi", T5Linear(c.d_model, c.d_ff));
    }
    wo = register_module("wo", T5Linear(c.d_ff, c.d_model));
}

torch::Tensor T5DenseImpl::activate(const torch::Tensor& x) const {
    switch (activation_) {
        case FeedForwardActivation::Relu:
            return torch::relu(x);
        case FeedForwardActivation::Gelu:
            return torch::gelu(x);
        case FeedForwardActivation::GeluTanh:
            return torch::gelu(x, "tanh");
    }
    return x;
}

torch::Tensor T5DenseImpl::forward(const torch::Tensor& x) {
    torch::Tensor hidden = wi ? wi->forward(x) : wi_0->forward(x);
    torch::Tensor gate = wi ? torch::Tensor() : wi_1->forward(x);
    if (fusable(hidden) && (!gate.defined() || fusable(gate)))
        activateInPlace(hidden, activation_, gate);
    else
        hidden = gate.defined() ? activate(hidden) * gate : activate(hidden);
    return wo->forward(trainingDropout(*this, hidden, dropout_rate));
}

T5SubLayerImpl::T5SubLayerImpl(const T5Config& c, Kind kind_, bool has_relative_bias)
    : kind(kind_), dropout_rate(c.dropout_rate) {
    switch (kind) {
        case Kind::SelfAttention:
            attention = register_module("SelfAttention", T5Attention(c, has_relative_bias));
            break;
        case Kind::CrossAttention:
            attention = register_module("EncDecAttention", T5Attention(c, false));
            break;
        case Kind::FeedForward:
            dense = register_module("DenseReluDense", T5Dense(c));
            break;
    }
    layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor T5SubLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& enc,
                                      const torch::Tensor& bias, AttentionCache* cache) {
    torch::Tensor normed = layer_norm->forward(x);
    switch (kind) {
        case Kind::SelfAttention:
            return x + trainingDropout(*this, attention->forward(normed, torch::Tensor(), bias, cache),
                                       dropout_rate);
        case Kind::CrossAttention:
            return x + trainingDropout(*this, attention->forward(normed, enc, bias, cache), dropout_rate);
        case Kind::FeedForward:
            return x + trainingDropout(*this, dense->forward(normed), dropout_rate);
    }
    return x;
}

T5BlockImpl::T5BlockImpl(const T5Config& c, Stack stack, bool has_relative_bias) {
    auto list = register_module("layer", torch::nn::ModuleList());
    layers.push_back(T5SubLayer(c, T5SubLayerImpl::Kind::SelfAttention, has_relative_bias));
    if (stack == Stack::Decoder) layers.push_back(T5SubLayer(c, T5SubLayerImpl::Kind::CrossAttention, false));
    layers.push_back(T5SubLayer(c, T5SubLayerImpl::Kind::FeedForward, false));
    for (auto& layer : layers) list->push_back(layer);
}

torch::Tensor T5BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& self_bias,
                                   const torch::Tensor& enc, const torch::Tensor& cross_bias,
                                   AttentionCache* cache) {
    torch::Tensor h = layers[0]->forward(x, torch::Tensor(), self_bias, cache);
    if (layers.size() == 3) h = layers[1]->forward(h, enc, cross_bias, cache);
    return layers.back()->forward(h, torch::Tensor(), torch::Tensor(), cache);
}

T5StackImpl::T5StackImpl(const T5Config& c, Stack stack)
    : bidirectional_(stack == Stack::Encoder),
      num_buckets_(c.relative_attention_num_buckets),
      max_distance_(c.relative_attention_max_distance) {
    auto list = register_module("block", torch::nn::ModuleList());
    const int64_t count = stack == Stack::Encoder ? c.num_layers : c.num_decoder_layers;
    for (int64_t i = 0; i < count; ++i) {
        blocks.push_back(T5Block(c, stack, i == 0));
        list->push_back(blocks.back());
    }
    final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor T5StackImpl::positionBias(int64_t q_offset, int64_t q_len, int64_t k_len) const {
    auto opts = torch::TensorOptions().dtype(torch::kLong);
    torch::Tensor query_pos = torch::arange(q_offset, q_offset + q_len, opts).unsqueeze(1);
    torch::Tensor key_pos = torch::arange(k_len, opts).unsqueeze(0);
    torch::Tensor relative = key_pos - query_pos;  // [q_len, k_len]
    // The bucketing of Hugging Face's T5Attention._relative_position_bucket, op for op, so that the
    // float32 logarithm rounds the same way at bucket boundaries.
    int64_t buckets = num_buckets_;
    torch::Tensor bucket = torch::zeros_like(relative);
    if (bidirectional_) {
        buckets /= 2;
        bucket = bucket + (relative > 0).to(torch::kLong) * buckets;
        relative = relative.abs();
    } else {
        relative = -torch::min(relative, torch::zeros_like(relative));
    }
    const int64_t max_exact = buckets / 2;
    torch::Tensor is_small = relative < max_exact;
    torch::Tensor large = max_exact + (torch::log(relative.to(torch::kFloat) / max_exact) /
                                       std::log(double(max_distance_) / max_exact) * (buckets - max_exact))
                                          .to(torch::kLong);
    large = torch::min(large, torch::full_like(large, buckets - 1));
    bucket = bucket + torch::where(is_small, relative, large);
    const auto& table = blocks[0]->layers[0]->attention->relative_attention_bias;
    // Contiguous once here rather than once per layer: the attention reads it row by row.
    return torch::embedding(table->weight, bucket)
        .permute({2, 0, 1})
        .contiguous()
        .unsqueeze(0);  // [1, heads, q_len, k_len]
}

}  // namespace phatgoose
