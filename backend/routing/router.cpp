#include "routing/router.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>

#include "error.h"
#include "model/token_batch.h"
#include "routing/expert_stack.h"

namespace phatgoose {
namespace {

constexpr double kStandardizeEps = 1e-5;  // LayerNorm's default, as the authors' router uses

// (v - mean(v)) / sqrt(var(v) + eps) along the last dimension, population variance, no affine parameters.
torch::Tensor standardize(const torch::Tensor& v) {
    torch::Tensor mean = v.mean(-1, true);
    torch::Tensor var = (v - mean).pow(2).mean(-1, true);
    return (v - mean) / torch::sqrt(var + kStandardizeEps);
}

std::vector<const LoraExpert*> expertsAt(const std::vector<LoraExpert>& experts, const std::string& site,
                                         bool need_gate, std::vector<int64_t>& ids) {
    std::vector<const LoraExpert*> out;
    ids.clear();
    for (size_t i = 0; i < experts.size(); ++i) {
        auto it = experts[i].modules.find(site);
        if (it == experts[i].modules.end() || (need_gate && !it->second.gate.defined())) continue;
        out.push_back(&experts[i]);
        ids.push_back(int64_t(i));
    }
    return out;
}

void appendRows(SiteRouting& trace, const torch::Tensor& local_ids, const torch::Tensor& weights,
                const std::vector<int64_t>& to_library) {
    torch::Tensor ids = local_ids.contiguous(), w = weights.contiguous().to(torch::kFloat);
    const int64_t* ip = ids.data_ptr<int64_t>();
    const float* wp = w.data_ptr<float>();
    for (int64_t i = 0; i < ids.numel(); ++i) {
        trace.experts.push_back(int32_t(to_library[size_t(ip[i])]));
        trace.weights.push_back(wp[i]);
    }
    trace.tokens += ids.size(0);
}

// merge: one dense averaged delta per layer.
class DenseDelta : public LinearAdapter {
public:
    explicit DenseDelta(torch::Tensor delta) : delta_(std::move(delta)) {}
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) override {
        return base + project(x, delta_);
    }

private:
    torch::Tensor delta_;  // [d_out, d_in]
};

enum class ScoreRule { Standardized, AbsoluteDot };

// Whether a layer's rows are decoder tokens. Cross-attention keys and values read the encoder output: their
// rows are encoder positions.
bool rowsAreDecoderTokens(const LinearSite& site) {
    const bool cross_kv = site.kind == "EncDecAttention.k" || site.kind == "EncDecAttention.v";
    return site.stack == Stack::Decoder && !cross_kv;
}

// A TokenPin as one layer applies it: the pinned expert's index in the layer's stack, or -1 where the pin
// covers none of the layer's rows.
struct LayerPin {
    TokenPin pin;
    int64_t local = -1;
    bool decoder_rows = false;
};

// Token-wise top-k routing (phatgoose, average-activation, arrow): scores of every candidate from one
// matmul, then only the kept experts are applied.
class TokenRouter : public LinearAdapter {
public:
    TokenRouter(ExpertStack stack, const torch::Tensor& keys, ScoreRule rule, int64_t k, SiteRecorder trace,
                bool record_scores, bool dense, LayerPin pin)
        : stack_(std::move(stack)),
          rule_(rule),
          k_(std::min(k, stack_.size())),
          trace_(trace),
          record_scores_(record_scores),
          dense_(dense),
          pin_(std::move(pin)) {
        // Standardised in float32, then kept in the gates' own dtype: BF16 gates of a large library stay
        // half the size, and the score product reads them as it reads BF16 weights.
        const torch::Tensor wide = keys.to(torch::kFloat);
        keys_ = (rule == ScoreRule::Standardized ? standardize(wide) : wide)
                    .to(keys.scalar_type())
                    .contiguous();  // [N, d_in]
    }

    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) override {
        torch::Tensor x2 = x.reshape({-1, x.size(-1)});  // [tokens, d_in]
        torch::Tensor scores = score(x2);                // [tokens, N]
        if (pin_.local >= 0 && scores.requires_grad())
            throw Error("routing: a token pin is for inference only, not for training");
        auto [ids, weights] =
            scores.requires_grad() ? topKSoftmax(scores) : topKSoftmaxPlain(scores.contiguous());
        if (pin_.local >= 0) pinTokens(ids, weights, x.dim() == 3 ? x.size(1) : x2.size(0));
        if (trace_) record(scores, ids, weights);
        if (dense_) return base + stack_.applyDense(x2, ids, weights).view(base.sizes());
        torch::Tensor out = base.reshape({-1, base.size(-1)});  // a view of base: the experts add in place
        stack_.addInto(out, x2, ids, weights);
        return out.view(base.sizes());
    }

    int64_t bytes() const { return stack_.bytes() + int64_t(keys_.nbytes()); }

private:
    torch::Tensor score(const torch::Tensor& x2) const {
        torch::Tensor raw = project(x2, keys_);  // [tokens, N]; sgemv for one or two tokens
        if (rule_ == ScoreRule::AbsoluteDot) return raw.abs();
        if (!raw.requires_grad()) return divideBySpread(x2.contiguous(), raw.contiguous());
        // LN(u) . LN(v) = (u . LN(v)) / sigma_u because LN(v) sums to zero: no need to standardise u itself.
        // With autograd: sigma_u from the norm of the centred rows (ATen's var() takes 25x longer here).
        torch::Tensor centred = x2 - x2.mean(1, true);
        torch::Tensor variance = torch::norm(centred, 2, {1}, true).pow(2) / double(x2.size(1));
        return raw / (torch::sqrt(variance + kStandardizeEps) * std::sqrt(double(x2.size(1))));
    }

    std::pair<torch::Tensor, torch::Tensor> topKSoftmax(const torch::Tensor& scores) const {
        auto [kept, ids] = scores.topk(k_, 1);  // [tokens, k]
        return {ids, torch::softmax(kept, 1)};
    }

    // The k best experts of every token, best first (ties to the lower index), and a softmax over their
    // scores: one insertion pass over each row of [tokens, N] instead of topk's general machinery.
    std::pair<torch::Tensor, torch::Tensor> topKSoftmaxPlain(const torch::Tensor& scores) const {
        const int64_t tokens = scores.size(0), n = scores.size(1);
        torch::Tensor ids = torch::empty({tokens, k_}, torch::kLong), weights = torch::empty({tokens, k_});
        const float* s = scores.data_ptr<float>();
        int64_t* id = ids.data_ptr<int64_t>();
        float* w = weights.data_ptr<float>();
        for (int64_t t = 0; t < tokens; ++t) {
            const float* row = s + t * n;
            int64_t* best = id + t * k_;  // kept sorted, best first
            int64_t kept = 0;
            for (int64_t e = 0; e < n; ++e) {
                if (kept == k_ && !(row[e] > row[best[k_ - 1]])) continue;
                int64_t slot = kept < k_ ? kept++ : k_ - 1;
                for (; slot > 0 && row[e] > row[best[slot - 1]]; --slot) best[slot] = best[slot - 1];
                best[slot] = e;
            }
            double total = 0;
            for (int64_t j = 0; j < k_; ++j) total += std::exp(double(row[best[j]] - row[best[0]]));
            for (int64_t j = 0; j < k_; ++j)
                w[t * k_ + j] = float(std::exp(double(row[best[j]] - row[best[0]])) / total);
        }
        return {ids, weights};
    }

    // The pinned tokens' rows become [pinned expert, the method's other choices ...] with weights [1, 0,
    // ...]: the output is the pinned expert's alone, and the trace still shows what the method would have
    // kept. Rows are [batch * len] tokens, so a row's position in its sequence is its index modulo len.
    void pinTokens(torch::Tensor& ids, torch::Tensor& weights, int64_t len) const {
        int64_t* id = ids.data_ptr<int64_t>();
        float* w = weights.data_ptr<float>();
        std::vector<int64_t> chosen(static_cast<size_t>(k_));
        for (int64_t t = 0; t < ids.size(0); ++t) {
            if (!pin_.decoder_rows && !pin_.pin.coversInput(t % len)) continue;
            int64_t* row = id + t * k_;
            chosen.assign(row, row + k_);
            row[0] = pin_.local;
            w[t * k_] = 1.0f;
            int64_t slot = 1;
            for (int64_t e : chosen)
                if (slot < k_ && e != pin_.local) {
                    row[slot] = e;
                    w[t * k_ + slot++] = 0.0f;
                }
        }
    }

    // The same division without autograd, in plain loops over each row (held in cache for both passes):
    // ATen's mean, subtract, norm and divide would make five passes and a [tokens, d_in] temporary.
    static torch::Tensor divideBySpread(const torch::Tensor& x2, torch::Tensor raw) {
        const int64_t d = x2.size(1), n = raw.size(1);
        for (int64_t t = 0; t < x2.size(0); ++t) {
            const float* u = x2.data_ptr<float>() + t * d;
            const float mean = laneSum(u, d, [](float v) { return v; }) / float(d);
            const float sq = laneSum(u, d, [mean](float v) { return (v - mean) * (v - mean); });
            const float scale =
                float(1.0 / (std::sqrt(double(sq) / double(d) + kStandardizeEps) * std::sqrt(double(d))));
            float* row = raw.data_ptr<float>() + t * n;
            for (int64_t i = 0; i < n; ++i) row[i] *= scale;
        }
        return raw;
    }

    // sum_c f(u[c]) in eight independent partial sums, which the compiler turns into one vector register
    // (a single running float sum is a serial chain it may not reorder).
    template <typename F>
    static float laneSum(const float* u, int64_t d, F f) {
        constexpr int64_t kLanes = 8;
        float lane[kLanes] = {};
        int64_t c = 0;
        for (; c + kLanes <= d; c += kLanes)
            for (int64_t l = 0; l < kLanes; ++l) lane[l] += f(u[c + l]);
        float total = 0;
        for (; c < d; ++c) total += f(u[c]);
        for (float v : lane) total += v;
        return total;
    }

    void record(const torch::Tensor& scores, const torch::Tensor& ids, const torch::Tensor& weights) {
        appendRows(*trace_, ids, weights, stack_.expertIds());
        if (!record_scores_) return;
        torch::Tensor s = scores.contiguous();
        trace_->scores.insert(trace_->scores.end(), s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
    }

    ExpertStack stack_;
    torch::Tensor keys_;  // [N, d_in], standardised for ScoreRule::Standardized
    ScoreRule rule_;
    int64_t k_;
    SiteRecorder trace_;
    bool record_scores_, dense_;
    LayerPin pin_;
};

// The expert chosen for each batch row (library indices), shared by all layers of a RowRouter-based method.
struct RowChoice {
    std::vector<int64_t> experts;  // one per row, or one for every row
    bool bypass = false;           // while the method embeds its queries with the base model
};

// single and retrieval: every token of a batch row goes to the one expert chosen for that row.
class RowRouter : public LinearAdapter {
public:
    RowRouter(ExpertStack stack, std::shared_ptr<const RowChoice> choice, SiteRecorder trace)
        : stack_(std::move(stack)), choice_(std::move(choice)), trace_(trace) {}

    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) override {
        if (choice_->bypass) return base;
        const int64_t rows = x.size(0), len = x.numel() / (x.size(0) * x.size(-1));
        const std::vector<int64_t>& chosen = choice_->experts;
        if (chosen.size() != 1 && int64_t(chosen.size()) != rows)
            throw Error("routing: the batch has " + std::to_string(rows) + " rows but " +
                        std::to_string(chosen.size()) + " were routed");
        std::vector<int64_t> local(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r)
            local[size_t(r)] = toLocal(chosen.size() == 1 ? chosen[0] : chosen[size_t(r)]);
        torch::Tensor ids = torch::tensor(local).repeat_interleave(len).unsqueeze(1);  // [tokens, 1]
        torch::Tensor weights = torch::ones({ids.size(0), 1});
        torch::Tensor x2 = x.reshape({-1, x.size(-1)});
        if (trace_) appendRows(*trace_, ids, weights, stack_.expertIds());
        torch::Tensor out = base.reshape({-1, base.size(-1)});
        stack_.addInto(out, x2, ids, weights);
        return out.view(base.sizes());
    }

    int64_t bytes() const { return stack_.bytes(); }

private:
    int64_t toLocal(int64_t library_id) const {
        const auto& ids = stack_.expertIds();
        auto it = std::find(ids.begin(), ids.end(), library_id);
        if (it == ids.end()) throw Error("routing: the chosen expert has no LoRA module here");
        return int64_t(it - ids.begin());
    }
    ExpertStack stack_;
    std::shared_ptr<const RowChoice> choice_;
    SiteRecorder trace_;
};

// The top right-singular vector of B A (Arrow's router key), from the small [r, d_in] factor R_B A.
torch::Tensor arrowKey(const LoraModule& m) {
    // B = Q R, so B A = Q (R A) and shares R A's right singular vectors.
    auto [q, r] = torch::linalg_qr(m.B.to(torch::kFloat));
    auto [u, s, vh] = torch::linalg_svd(torch::mm(r, m.A.to(torch::kFloat)), false);
    return vh[0];
}

// Mean input to every covered layer over an expert's examples: token mean per example, then the mean over
// examples (the average-activation baseline's router key).
class ActivationMean : public LinearAdapter {
public:
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) override {
        torch::Tensor per_example = x.mean(1);  // [batch, d_in]
        sum_ = sum_.defined() ? sum_ + per_example.sum(0) : per_example.sum(0);
        count_ += x.size(0);
        return base;
    }
    torch::Tensor mean() const { return sum_ / double(count_); }

private:
    torch::Tensor sum_;
    int64_t count_ = 0;
};

}  // namespace

// ---- Router -----------------------------------------------------------------------------------------

Router::Router(T5ModelImpl& model, const std::string& method, const std::vector<LoraExpert>& experts,
               int64_t top_k)
    : model_(model) {
    trace_.method = method;
    trace_.top_k = top_k;
    for (const auto& e : experts) trace_.expert_names.push_back(e.name);
}

Router::~Router() {
    suspend();
}

void Router::suspend() {
    for (auto& [linear, adapter] : attached_) linear.ptr()->setAdapter(nullptr);
}

void Router::resume() {
    for (auto& [linear, adapter] : attached_) linear.ptr()->setAdapter(adapter);
}

namespace {

// Times the adapter it wraps, into the router's clock (for --timings); the cost is two clock reads per call.
class TimedAdapter : public LinearAdapter {
public:
    using Clock = std::chrono::steady_clock;
    TimedAdapter(std::shared_ptr<LinearAdapter> inner, double* seconds, int64_t* calls)
        : inner_(std::move(inner)), seconds_(seconds), calls_(calls) {}
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& base) override {
        const auto t0 = Clock::now();
        torch::Tensor out = inner_->forward(x, base);
        *seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
        ++*calls_;
        return out;
    }

private:
    std::shared_ptr<LinearAdapter> inner_;
    double* seconds_;
    int64_t* calls_;
};

}  // namespace

void Router::attach(const T5Linear& linear, std::shared_ptr<LinearAdapter> adapter) {
    if (linear->adapter()) throw Error("routing: a layer of this model is already routed by another router");
    adapter = std::make_shared<TimedAdapter>(std::move(adapter), &clock_->seconds, &clock_->calls);
    linear.ptr()->setAdapter(adapter);
    attached_.emplace_back(linear, std::move(adapter));
}

SiteRecorder Router::addSite(const LinearSite& site, const std::vector<int64_t>& candidates, int64_t k) {
    SiteRouting s;
    s.site = site.path;
    s.block = site.block;
    s.kind = site.kind;
    s.k = std::min<int64_t>(k, int64_t(candidates.size()));
    s.decoder_tokens = rowsAreDecoderTokens(site);
    s.candidates.assign(candidates.begin(), candidates.end());
    trace_.sites.push_back(std::move(s));
    return SiteRecorder(&trace_, trace_.sites.size() - 1);
}

namespace {

class BaseRouter : public Router {
public:
    BaseRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts)
        : Router(model, routingMethodName(RoutingMethodId::Base), experts, 0) {}
};

class MergeRouter : public Router {
public:
    MergeRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts)
        : Router(model, routingMethodName(RoutingMethodId::Merge), experts, 0) {
        torch::NoGradGuard no_grad;
        for (auto& [site, linear] : model.linears()) {
            std::vector<int64_t> ids;
            auto covering = expertsAt(experts, site.path, false, ids);
            if (covering.empty()) continue;
            ExpertStack stack(site.path, covering, ids);
            torch::Tensor delta = torch::zeros({site.d_out, site.d_in});
            for (int64_t i = 0; i < stack.size(); ++i) delta += stack.deltaWeight(i);
            // The uniform average over all N experts: an expert without this layer contributes a zero delta.
            delta /= double(experts.size());
            bytes_ += delta.numel() * int64_t(sizeof(float));
            attach(linear, std::make_shared<DenseDelta>(delta));
        }
    }
};

// Token-wise methods differ only in their router keys and score rule.
class KeyedRouter : public Router {
public:
    using KeyFn = std::function<torch::Tensor(const LinearSite&, int64_t library_id, const LoraModule&)>;
    KeyedRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
                ScoreRule rule, bool need_gate, const KeyFn& key)
        : Router(model, spec.method, experts, spec.top_k) {
        trace_.record_scores = spec.record_scores;
        torch::NoGradGuard no_grad;
        for (auto& [site, linear] : model.linears()) {
            std::vector<int64_t> ids;
            auto covering = expertsAt(experts, site.path, need_gate, ids);
            if (covering.empty()) continue;
            std::vector<torch::Tensor> keys;
            for (size_t i = 0; i < covering.size(); ++i)
                keys.push_back(key(site, ids[i], covering[i]->modules.at(site.path)));
            const SiteRecorder trace = spec.record_trace ? addSite(site, ids, spec.top_k) : SiteRecorder();
            auto router = std::make_shared<TokenRouter>(
                ExpertStack(site.path, covering, ids), torch::stack(keys), rule, spec.top_k, trace,
                spec.record_scores, spec.dense_reference, layerPin(spec.pin, site, experts, ids, need_gate));
            bytes_ += router->bytes();
            attach(linear, router);
        }
    }

private:
    static LayerPin layerPin(const TokenPin& pin, const LinearSite& site,
                             const std::vector<LoraExpert>& experts, const std::vector<int64_t>& ids,
                             bool need_gate) {
        LayerPin layer{.pin = pin, .decoder_rows = rowsAreDecoderTokens(site)};
        if (!pin.active() || (layer.decoder_rows && !pin.output_tokens)) return layer;
        for (size_t i = 0; i < ids.size(); ++i)
            if (experts[size_t(ids[i])].name == pin.expert) layer.local = int64_t(i);
        if (layer.local < 0)
            throw Error("cannot pin expert '" + pin.expert + "' at " + site.path + ": it has no " +
                        (need_gate ? "gate" : "LoRA module") + " there");
        return layer;
    }
};

// Routes whole batch rows to one expert each: `single` (always the named expert) and `retrieval`.
class RowRoutedRouter : public Router {
public:
    RowRoutedRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
                    std::vector<int64_t> usable)
        : Router(model, spec.method, experts, 1), choice_(std::make_shared<RowChoice>()) {
        torch::NoGradGuard no_grad;
        for (auto& [site, linear] : model.linears()) {
            std::vector<const LoraExpert*> covering;
            std::vector<int64_t> ids;
            for (int64_t i : usable)
                if (experts[size_t(i)].modules.count(site.path)) {
                    covering.push_back(&experts[size_t(i)]);
                    ids.push_back(i);
                }
            if (covering.empty()) continue;
            const SiteRecorder trace = spec.record_trace ? addSite(site, ids, 1) : SiteRecorder();
            auto router = std::make_shared<RowRouter>(ExpertStack(site.path, covering, ids), choice_, trace);
            bytes_ += router->bytes();
            attach(linear, router);
        }
        if (usable.size() == 1) choice_->experts = {usable.front()};
    }

protected:
    std::shared_ptr<RowChoice> choice_;
};

// Mean-pooled base-model encoder states, L2-normalised: the embedding retrieval compares ([rows, d_model]).
torch::Tensor embedInputs(T5ModelImpl& model, const std::vector<std::vector<int64_t>>& inputs) {
    std::vector<torch::Tensor> parts;
    for (size_t start = 0; start < inputs.size(); start += 32) {
        std::vector<std::vector<int64_t>> chunk(inputs.begin() + long(start),
                                                inputs.begin() + long(std::min(inputs.size(), start + 32)));
        TokenBatch batch = TokenBatch::fromRows(chunk, model.config().pad_token_id);
        torch::Tensor states = model.encode(batch.ids, batch.mask);      // [rows, len, d_model]
        torch::Tensor mask = batch.mask.unsqueeze(2).to(torch::kFloat);  // [rows, len, 1]
        torch::Tensor pooled = (states * mask).sum(1) / mask.sum(1);     // [rows, d_model]
        parts.push_back(
            torch::nn::functional::normalize(pooled, torch::nn::functional::NormalizeFuncOptions().dim(1)));
    }
    return torch::cat(parts);
}

// Retrieval (the paper's baseline, with the base model's own mean-pooled encoder states as the sentence
// embedding, since no sentence encoder is available offline): each query goes, in every layer, to the expert
// whose stored training example is most similar by cosine.
class RetrievalRouter : public RowRoutedRouter {
public:
    RetrievalRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
                    const ExpertExamples& examples)
        : RowRoutedRouter(model, experts, spec, allIndices(experts.size())) {
        torch::InferenceMode guard;
        choice_->bypass = true;
        std::vector<torch::Tensor> parts;
        for (size_t e = 0; e < experts.size(); ++e) {
            auto inputs = examples.inputs[e];
            if (inputs.size() > ExpertExamples::kMaxExamplesPerExpert)
                inputs.resize(ExpertExamples::kMaxExamplesPerExpert);
            parts.push_back(embedInputs(model, inputs));
            owner_.insert(owner_.end(), inputs.size(), int64_t(e));
        }
        choice_->bypass = false;
        stored_ = torch::cat(parts);  // [examples, d_model]
        bytes_ += stored_.numel() * int64_t(sizeof(float));
    }

    void beginBatch(const std::vector<std::vector<int64_t>>& inputs) override {
        torch::InferenceMode guard;
        choice_->bypass = true;
        torch::Tensor query = embedInputs(model_, inputs);  // [rows, d_model]
        choice_->bypass = false;
        torch::Tensor nearest = torch::mm(query, stored_.t()).argmax(1);
        choice_->experts.clear();
        for (int64_t r = 0; r < nearest.size(0); ++r)
            choice_->experts.push_back(owner_[size_t(nearest[r].item<int64_t>())]);
    }

private:
    static std::vector<int64_t> allIndices(size_t n) {
        std::vector<int64_t> v(n);
        for (size_t i = 0; i < n; ++i) v[i] = int64_t(i);
        return v;
    }
    torch::Tensor stored_;
    std::vector<int64_t> owner_;
};

// Mean input of every linear layer over each expert's examples: [expert] -> site path -> [d_in].
std::vector<std::map<std::string, torch::Tensor>> averageActivations(T5ModelImpl& model,
                                                                     const std::vector<LoraExpert>& experts,
                                                                     const ExpertExamples& examples) {
    torch::InferenceMode guard;
    std::vector<std::map<std::string, torch::Tensor>> out(experts.size());
    auto linears = model.linears();
    for (size_t e = 0; e < experts.size(); ++e) {
        std::vector<std::shared_ptr<ActivationMean>> recorders;
        for (auto& [site, linear] : linears) {
            if (linear->adapter()) throw Error("routing: the model is already routed");
            recorders.push_back(std::make_shared<ActivationMean>());
            linear->setAdapter(recorders.back());
        }
        const size_t n = std::min(examples.inputs[e].size(), ExpertExamples::kMaxExamplesPerExpert);
        try {
            for (size_t start = 0; start < n; start += 16) {
                const size_t end = std::min(n, start + 16);
                std::vector<std::vector<int64_t>> in(examples.inputs[e].begin() + long(start),
                                                     examples.inputs[e].begin() + long(end));
                std::vector<std::vector<int64_t>> dec;
                for (size_t i = start; i < end; ++i) {
                    std::vector<int64_t> d{model.config().decoder_start_token_id};
                    d.insert(d.end(), examples.targets[e][i].begin(), examples.targets[e][i].end() - 1);
                    dec.push_back(std::move(d));
                }
                // Rows of one length at a time, so that padding does not dilute the token means.
                for (size_t i = 0; i < in.size(); ++i) {
                    torch::Tensor ids = torch::tensor(in[i]).unsqueeze(0);
                    torch::Tensor enc = model.encode(ids, torch::ones_like(ids));
                    model.decode(torch::tensor(dec[i]).unsqueeze(0), enc, torch::ones_like(ids));
                }
            }
        } catch (...) {
            for (auto& [site, linear] : linears) linear->setAdapter(nullptr);
            throw;
        }
        for (size_t i = 0; i < linears.size(); ++i) {
            linears[i].second->setAdapter(nullptr);
            out[e][linears[i].first.path] = recorders[i]->mean();
        }
    }
    return out;
}

}  // namespace

namespace {

// "a, b (2 of 5)" for the experts without a gate; "" when every expert has one.
std::string ungatedNames(const std::vector<LoraExpert>& experts) {
    std::string names;
    size_t count = 0;
    for (const LoraExpert& e : experts)
        if (!e.hasGate()) names += (count++ ? ", " : "") + e.name;
    if (count == 0) return "";
    return names + " (" + std::to_string(count) + " of " + std::to_string(experts.size()) + ")";
}

void validatePin(const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
                 const RoutingMethod& method) {
    const TokenPin& pin = spec.pin;
    if (!method.uses_top_k)
        throw Error("pinning an expert applies to the token-wise routing methods, not to '" + spec.method +
                    "'");
    if (pin.first < 0 || (pin.last >= 0 && pin.last < pin.first))
        throw Error("the pinned token range " + std::to_string(pin.first) + "-" + std::to_string(pin.last) +
                    " is empty or negative");
    std::string known;
    for (const LoraExpert& e : experts) {
        if (e.name == pin.expert) return;
        known += (known.empty() ? "" : ", ") + e.name;
    }
    throw Error("cannot pin expert '" + pin.expert + "': the routed library has " + known);
}

void validate(const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
              const ExpertExamples* examples) {
    const RoutingMethod& method = routingMethod(spec.method);
    if (!method.needs_experts) return;
    if (experts.empty()) throw Error("routing method '" + spec.method + "' needs at least one expert");
    // Names pick experts (single, traces, results): two experts of one name would make that a silent guess.
    std::map<std::string, const LoraExpert*> by_name;
    for (const LoraExpert& e : experts)
        if (auto [it, fresh] = by_name.emplace(e.name, &e); !fresh)
            throw Error("two experts are named '" + e.name + "' (" + it->second->dir.string() + " and " +
                        e.dir.string() + "); expert names must be distinct");
    if (method.uses_top_k && (spec.top_k < 1 || spec.top_k > int64_t(experts.size())))
        throw Error("top-k must be between 1 and the number of experts (" + std::to_string(experts.size()) +
                    "), got " + std::to_string(spec.top_k));
    if (method.needs_gates &&
        std::none_of(experts.begin(), experts.end(), [](const LoraExpert& e) { return e.hasGate(); }))
        throw Error("routing method '" + spec.method +
                    "' needs experts with trained gates, and none of the " + std::to_string(experts.size()) +
                    " experts has one (train them with 'phatgoose train-gate')");
    if (method.needs_gates && spec.require_gates) {
        const std::string ungated = ungatedNames(experts);
        if (!ungated.empty())
            throw Error("routing method '" + spec.method +
                        "' with all gates required: these experts have no "
                        "gate: " +
                        ungated);
    }
    if (spec.pin.active()) validatePin(experts, spec, method);
    if (method.needs_examples) {
        if (!examples || examples->inputs.size() != experts.size() ||
            examples->targets.size() != experts.size())
            throw Error("routing method '" + spec.method + "' needs each expert's training examples");
        for (size_t e = 0; e < experts.size(); ++e)
            if (examples->inputs[e].empty())
                throw Error("routing method '" + spec.method + "': no training examples for expert '" +
                            experts[e].name + "'");
    }
}

std::unique_ptr<Router> routerFor(T5ModelImpl& model, const std::vector<LoraExpert>& experts,
                                  const RoutingSpec& spec, const ExpertExamples* examples) {
    switch (routingMethod(spec.method).id) {
        case RoutingMethodId::Base:
            return std::make_unique<BaseRouter>(model, experts);
        case RoutingMethodId::Merge:
            return std::make_unique<MergeRouter>(model, experts);
        case RoutingMethodId::Single: {
            auto it = std::find_if(experts.begin(), experts.end(),
                                   [&](const LoraExpert& e) { return e.name == spec.expert; });
            if (it == experts.end())
                throw Error("routing method '" + spec.method + "': no expert named '" + spec.expert + "'");
            return std::make_unique<RowRoutedRouter>(model, experts, spec,
                                                     std::vector<int64_t>{int64_t(it - experts.begin())});
        }
        case RoutingMethodId::Retrieval:
            return std::make_unique<RetrievalRouter>(model, experts, spec, *examples);
        case RoutingMethodId::Phatgoose:
            return std::make_unique<KeyedRouter>(
                model, experts, spec, ScoreRule::Standardized, true,
                [](const LinearSite&, int64_t, const LoraModule& mod) { return mod.gate; });
        case RoutingMethodId::Arrow:
            return std::make_unique<KeyedRouter>(
                model, experts, spec, ScoreRule::AbsoluteDot, false,
                [](const LinearSite&, int64_t, const LoraModule& mod) { return arrowKey(mod); });
        case RoutingMethodId::AverageActivation: {
            auto means = std::make_shared<std::vector<std::map<std::string, torch::Tensor>>>(
                averageActivations(model, experts, *examples));
            return std::make_unique<KeyedRouter>(
                model, experts, spec, ScoreRule::Standardized, false,
                [means](const LinearSite& site, int64_t e, const LoraModule&) {
                    return (*means)[size_t(e)].at(site.path);
                });
        }
    }
    throw Error("routing method '" + spec.method + "' has no router");
}

}  // namespace

std::unique_ptr<Router> makeRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts,
                                   const RoutingSpec& spec, const ExpertExamples* examples) {
    validate(experts, spec, examples);
    std::unique_ptr<Router> router = routerFor(model, experts, spec, examples);
    if (routingMethod(spec.method).needs_gates)
        if (const std::string ungated = ungatedNames(experts); !ungated.empty())
            router->warnings_.push_back("routing method '" + spec.method +
                                        "' leaves out the experts without a "
                                        "gate: " +
                                        ungated);
    return router;
}

}  // namespace phatgoose
