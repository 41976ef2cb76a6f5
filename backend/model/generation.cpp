#include "model/generation.h"

#include <chrono>

#include <algorithm>
#include <cmath>

#include "error.h"
#include "model/token_batch.h"

namespace phatgoose {

TokenBatch TokenBatch::fromRows(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id) {
    size_t width = 1;
    for (const auto& r : rows) width = std::max(width, r.size());
    TokenBatch batch;
    batch.ids = torch::full({int64_t(rows.size()), int64_t(width)}, pad_id, torch::kLong);
    batch.mask = torch::zeros({int64_t(rows.size()), int64_t(width)}, torch::kLong);
    auto ids = batch.ids.accessor<int64_t, 2>();
    auto mask = batch.mask.accessor<int64_t, 2>();
    for (size_t i = 0; i < rows.size(); ++i)
        for (size_t j = 0; j < rows[i].size(); ++j) {
            ids[i][j] = rows[i][j];
            mask[i][j] = 1;
        }
    return batch;
}

void checkTokenIds(const T5Config& config, const std::vector<int64_t>& ids, const std::string& what) {
    if (ids.empty()) throw Error(what + ": empty input (no tokens)");
    for (int64_t id : ids)
        if (id < 0 || id >= config.vocab_size)
            throw Error(what + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(config.vocab_size) + ")");
}

namespace {

// Records into GenerationTimings when one is asked for: the time since the last mark.
class StepClock {
public:
    explicit StepClock(GenerationTimings* timings) : timings_(timings) {}
    void encoded(int64_t tokens) {
        if (!timings_) return;
        timings_->encode_ms += lap();
        timings_->encoded_tokens += tokens;
    }
    void stepped() {
        if (timings_) timings_->step_ms.push_back(lap());
    }

private:
    double lap() {
        const auto now = std::chrono::steady_clock::now();
        const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
        last_ = now;
        return ms;
    }
    GenerationTimings* timings_;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

std::vector<Generation> greedy(T5ModelImpl& model, const TokenBatch& batch, const GenerationOptions& opt) {
    const T5Config& c = model.config();
    const int64_t rows = batch.ids.size(0);
    StepClock clock(opt.timings);
    torch::Tensor enc = opt.encoded.defined() ? opt.encoded : model.encode(batch.ids, batch.mask);
    clock.encoded(opt.encoded.defined() ? 0 : batch.ids.numel());
    DecoderCache cache;
    std::vector<Generation> out(rows);
    std::vector<bool> done(rows, false);
    torch::Tensor next = torch::full({rows, 1}, c.decoder_start_token_id, torch::kLong);
    for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
        torch::Tensor logp = torch::log_softmax(model.decode(next, enc, batch.mask, &cache).select(1, 0), -1);
        auto [best_lp, best] = logp.max(-1);  // [rows]
        clock.stepped();
        auto best_a = best.accessor<int64_t, 1>();
        auto lp_a = best_lp.accessor<float, 1>();
        bool all_done = true;
        for (int64_t r = 0; r < rows; ++r) {
            if (done[r]) continue;
            out[r].ids.push_back(best_a[r]);
            out[r].log_prob += lp_a[r];
            done[r] = best_a[r] == c.eos_token_id;
            all_done = all_done && done[r];
        }
        if (all_done) break;
        // Finished rows keep decoding pad tokens; their outputs are ignored.
        next = best.unsqueeze(1).clone();
        auto next_a = next.accessor<int64_t, 2>();
        for (int64_t r = 0; r < rows; ++r)
            if (done[r]) next_a[r][0] = c.pad_token_id;
    }
    for (auto& g : out)
        g.score = g.ids.empty() ? 0.0 : g.log_prob / std::pow(double(g.ids.size()), opt.length_penalty);
    return out;
}

struct Hypothesis {
    std::vector<int64_t> ids;
    double log_prob = 0.0;
};

// Beam search for one input: `beams` running hypotheses decoded as one batch; a hypothesis that emits eos
// is finished and scored log_prob / length^penalty; the search ends when `beams` are finished and no running
// beam can still beat the worst of them at the current length (Hugging Face's default stopping rule).
Generation beamSearch(T5ModelImpl& model, const TokenBatch& one, const GenerationOptions& opt) {
    const T5Config& c = model.config();
    const int64_t beams = opt.num_beams;
    StepClock clock(opt.timings);
    torch::Tensor enc = (opt.encoded.defined() ? opt.encoded : model.encode(one.ids, one.mask))
                            .expand({beams, -1, -1})
                            .contiguous();
    clock.encoded(opt.encoded.defined() ? 0 : one.ids.numel());
    torch::Tensor mask = one.mask.expand({beams, -1}).contiguous();
    DecoderCache cache;
    std::vector<Hypothesis> running(1);  // starts with one beam; widens after the first step
    std::vector<Generation> finished;
    auto score = [&](double lp, size_t len) { return lp / std::pow(double(len), opt.length_penalty); };
    torch::Tensor next = torch::full({1, 1}, c.decoder_start_token_id, torch::kLong);
    torch::Tensor enc_now = enc.narrow(0, 0, 1), mask_now = mask.narrow(0, 0, 1);
    for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
        torch::Tensor logp =
            torch::log_softmax(model.decode(next, enc_now, mask_now, &cache).select(1, 0), -1);
        clock.stepped();
        const int64_t vocab = logp.size(1);
        std::vector<float> base(running.size());
        for (size_t b = 0; b < running.size(); ++b) base[b] = float(running[b].log_prob);
        torch::Tensor total = logp + torch::tensor(base).unsqueeze(1);  // [running, vocab]
        auto [top_lp, top_idx] = total.view({-1}).topk(std::min<int64_t>(2 * beams, total.numel()));
        auto lp_a = top_lp.accessor<float, 1>();
        auto idx_a = top_idx.accessor<int64_t, 1>();
        std::vector<Hypothesis> next_running;
        std::vector<int64_t> rows, tokens;
        for (int64_t i = 0; i < top_idx.size(0) && int64_t(next_running.size()) < beams; ++i) {
            const int64_t row = idx_a[i] / vocab, token = idx_a[i] % vocab;
            Hypothesis h{running[row].ids, lp_a[i]};
            h.ids.push_back(token);
            if (token == c.eos_token_id) {
                // Only candidates ranked within the first `beams` may finish, as in Hugging Face.
                if (i < beams) finished.push_back({h.ids, h.log_prob, score(h.log_prob, h.ids.size())});
                continue;
            }
            rows.push_back(row);
            tokens.push_back(token);
            next_running.push_back(std::move(h));
        }
        std::sort(finished.begin(), finished.end(),
                  [](const Generation& a, const Generation& b) { return a.score > b.score; });
        if (int64_t(finished.size()) > beams) finished.resize(beams);
        running = std::move(next_running);
        if (running.empty()) break;
        const size_t cur_len = running.front().ids.size();
        if (int64_t(finished.size()) == beams &&
            finished.back().score >= score(running.front().log_prob, cur_len))
            break;
        torch::Tensor row_index = torch::tensor(rows, torch::kLong);
        cache.selectRows(row_index);
        next = torch::tensor(tokens, torch::kLong).unsqueeze(1);
        enc_now = enc.narrow(0, 0, int64_t(rows.size()));
        mask_now = mask.narrow(0, 0, int64_t(rows.size()));
    }
    for (const Hypothesis& h : running)
        if (int64_t(finished.size()) < beams || score(h.log_prob, h.ids.size()) > finished.back().score)
            finished.push_back({h.ids, h.log_prob, score(h.log_prob, h.ids.size())});
    std::stable_sort(finished.begin(), finished.end(),
                     [](const Generation& a, const Generation& b) { return a.score > b.score; });
    return finished.empty() ? Generation{} : finished.front();
}

}  // namespace

std::vector<Generation> generate(T5ModelImpl& model, const std::vector<std::vector<int64_t>>& inputs,
                                 const GenerationOptions& options) {
    if (options.num_beams < 1) throw Error("generation: the number of beams must be at least 1");
    if (options.max_new_tokens < 1) throw Error("generation: max new tokens must be at least 1");
    for (size_t i = 0; i < inputs.size(); ++i)
        checkTokenIds(model.config(), inputs[i], "input " + std::to_string(i));
    torch::InferenceMode guard;
    const TokenBatch batch = TokenBatch::fromRows(inputs, model.config().pad_token_id);
    if (options.encoded.defined() &&
        options.encoded.sizes() !=
            torch::IntArrayRef({batch.ids.size(0), batch.ids.size(1), model.config().d_model}))
        throw Error("generation: the given encoder output does not match the inputs' padded batch");
    if (options.num_beams == 1) return greedy(model, batch, options);
    std::vector<Generation> out;
    for (size_t i = 0; i < inputs.size(); ++i) {
        GenerationOptions one = options;
        const TokenBatch row = TokenBatch::fromRows({inputs[i]}, model.config().pad_token_id);
        if (one.encoded.defined())
            one.encoded = one.encoded.narrow(0, int64_t(i), 1).narrow(1, 0, row.ids.size(1));
        out.push_back(beamSearch(model, row, one));
    }
    return out;
}

}  // namespace phatgoose
