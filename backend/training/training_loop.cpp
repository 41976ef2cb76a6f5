#include "training/training_loop.h"

#include <chrono>
#include <cmath>
#include <random>

#include "error.h"
#include "model/generation.h"
#include "model/token_batch.h"

namespace phatgoose {

// Epochs of a seeded shuffle, so a seed fixes the batches bit for bit; a batch may span two epochs.
class ExampleOrder {
public:
    ExampleOrder(size_t count, uint64_t seed) : rng_(seed), order_(count), pos_(count) {
        for (size_t i = 0; i < count; ++i) order_[i] = i;
    }
    std::vector<size_t> next(int64_t n) {
        std::vector<size_t> out;
        for (int64_t i = 0; i < n; ++i) {
            if (pos_ == order_.size()) {
                std::shuffle(order_.begin(), order_.end(), rng_);
                pos_ = 0;
            }
            out.push_back(order_[pos_++]);
        }
        return out;
    }

private:
    std::mt19937_64 rng_;
    std::vector<size_t> order_;
    size_t pos_;
};

namespace {

constexpr int64_t kIgnoredLabel = -100;  // cross_entropy's default ignore_index: padding positions

// One padded batch under teacher forcing: the decoder reads [start] + target[:-1] and predicts target.
struct LmBatch {
    TokenBatch input;
    torch::Tensor decoder_ids;  // [batch, target_len]
    torch::Tensor labels;       // [batch, target_len], kIgnoredLabel on padding
    int64_t tokens = 0;         // real input + target tokens, for throughput
};

LmBatch makeBatch(const std::vector<TrainingPair>& pairs, const std::vector<size_t>& rows,
                  const T5Config& c) {
    std::vector<std::vector<int64_t>> inputs, shifted, targets;
    LmBatch batch;
    for (size_t r : rows) {
        const TrainingPair& p = pairs[r];
        inputs.push_back(p.input);
        targets.push_back(p.target);
        shifted.push_back({c.decoder_start_token_id});
        shifted.back().insert(shifted.back().end(), p.target.begin(), p.target.end() - 1);
        batch.tokens += int64_t(p.input.size() + p.target.size());
    }
    batch.input = TokenBatch::fromRows(inputs, c.pad_token_id);
    batch.decoder_ids = TokenBatch::fromRows(shifted, c.pad_token_id).ids;
    TokenBatch gold = TokenBatch::fromRows(targets, c.pad_token_id);
    batch.labels = gold.ids.masked_fill(gold.mask == 0, kIgnoredLabel);
    return batch;
}

// Token cross-entropy, reduced as asked (mean over target tokens for training, sum for validation).
torch::Tensor lmLoss(T5ModelImpl& model, const LmBatch& b,
                     torch::nn::functional::CrossEntropyFuncOptions::reduction_t reduction) {
    torch::Tensor enc = model.encode(b.input.ids, b.input.mask);            // [batch, in_len, d_model]
    torch::Tensor logits = model.decode(b.decoder_ids, enc, b.input.mask);  // [batch, tgt_len, vocab]
    return torch::nn::functional::cross_entropy(
        logits.flatten(0, 1), b.labels.flatten(),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoredLabel).reduction(reduction));
}

std::vector<int64_t> truncated(std::vector<int64_t> ids, int64_t max_tokens, int64_t eos) {
    truncateKeepingEos(ids, max_tokens, eos);
    return ids;
}

const TrainingOptions& checked(const TrainingOptions& options) {
    validate(options);
    return options;
}

std::string nonFinite(double v) {
    return std::isnan(v) ? "nan" : "inf";
}

}  // namespace

std::vector<TrainingPair> tokenizeForTraining(const Dataset& dataset, const Tokenizer& tokenizer,
                                              const T5Config& config, const TrainingOptions& options) {
    std::vector<TrainingPair> pairs;
    pairs.reserve(dataset.examples.size());
    for (const Example& ex : dataset.examples) {
        const std::string where = exampleLocation(dataset, ex);
        if (ex.target.empty() && !ex.choices.empty())
            throw Error(where + ": a multiple-choice example without a target cannot be trained on");
        TrainingPair p{
            truncated(tokenizer.encode(ex.input), options.max_input_tokens, config.eos_token_id),
            truncated(tokenizer.encode(ex.target), options.max_target_tokens, config.eos_token_id)};
        // encode() of an empty or whitespace-only text is [eos] alone: no token to learn.
        if (p.target.size() < 2)
            throw Error(where + ": the target tokenizes to nothing; there is nothing to train on");
        checkTokenIds(config, p.input, where + ": input");
        checkTokenIds(config, p.target, where + ": target");
        pairs.push_back(std::move(p));
    }
    return pairs;
}

double meanLoss(T5ModelImpl& model, const std::vector<TrainingPair>& pairs, int64_t batch_size) {
    torch::NoGradGuard no_grad;
    double total = 0.0;
    int64_t tokens = 0;
    for (size_t start = 0; start < pairs.size(); start += size_t(batch_size)) {
        std::vector<size_t> rows;
        for (size_t i = start; i < std::min(pairs.size(), start + size_t(batch_size)); ++i) {
            rows.push_back(i);
            tokens += int64_t(pairs[i].target.size());
        }
        total += lmLoss(model, makeBatch(pairs, rows, model.config()), torch::kSum).item<double>();
    }
    return tokens ? total / double(tokens) : 0.0;
}

namespace {

// The model in training mode (dropout on, at the run's rate) for one update, and back in inference mode
// afterwards whatever happens: validation passes and every later forward run without dropout.
class TrainingMode {
public:
    TrainingMode(T5ModelImpl& model, double rate) : model_(model), saved_rate_(model.dropoutRate()) {
        if (rate >= 0) model.setDropoutRate(rate);
        model.train(true);
    }
    ~TrainingMode() {
        model_.train(false);
        model_.setDropoutRate(saved_rate_);
    }
    TrainingMode(const TrainingMode&) = delete;
    TrainingMode& operator=(const TrainingMode&) = delete;

private:
    T5ModelImpl& model_;
    double saved_rate_;
};

}  // namespace

TrainingLoop::TrainingLoop(T5ModelImpl& model, const TrainingOptions& options,
                           std::vector<torch::Tensor> parameters)
    : model_(model),
      options_(checked(options)),
      parameters_(parameters),
      optimizer_(std::move(parameters),
                 torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay)) {}

double TrainingLoop::update(int64_t step, const std::vector<TrainingPair>& train, ExampleOrder& order,
                            int64_t& tokens) {
    for (auto& group : optimizer_.param_groups()) group.options().set_lr(learningRateAt(options_, step));
    optimizer_.zero_grad();
    const TrainingMode mode(model_, options_.dropout);
    double loss_sum = 0.0;
    for (int64_t micro = 0; micro < options_.accumulation_steps; ++micro) {
        const LmBatch batch = makeBatch(train, order.next(options_.batch_size), model_.config());
        torch::Tensor loss = lmLoss(model_, batch, torch::kMean);
        const double value = loss.item<double>();
        if (!std::isfinite(value)) throw TrainingDiverged(step, "loss is " + nonFinite(value));
        (loss / double(options_.accumulation_steps)).backward();
        loss_sum += value;
        tokens += batch.tokens;
    }
    if (options_.max_grad_norm > 0) {
        const double norm = torch::nn::utils::clip_grad_norm_(parameters_, options_.max_grad_norm);
        if (!std::isfinite(norm)) throw TrainingDiverged(step, "gradient norm is " + nonFinite(norm));
    }
    optimizer_.step();
    return loss_sum / double(options_.accumulation_steps);
}

void TrainingLoop::run(const std::vector<TrainingPair>& train, const std::vector<TrainingPair>& valid,
                       const TrainingControl& control, LoopOutcome& outcome,
                       const std::function<void()>& on_new_best) {
    if (train.empty()) throw Error("training: no training examples");
    torch::manual_seed(options_.seed);
    ExampleOrder order(train.size(), options_.seed);
    outcome = LoopOutcome{};
    int64_t tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t step = 1; step <= options_.steps; ++step) {
        if (control.cancel && control.cancel->load()) throw TrainingCancelled(step - 1);
        TrainingProgress p;
        p.step = step;
        p.total_steps = options_.steps;
        p.learning_rate = learningRateAt(options_, step);
        p.loss = update(step, train, order, tokens);
        outcome.loss_curve.push_back(p.loss);
        outcome.final_loss = p.loss;
        outcome.steps = step;
        if (!valid.empty() && (step % options_.valid_every == 0 || step == options_.steps)) {
            p.valid_loss = meanLoss(model_, valid, options_.batch_size);
            if (!outcome.best_valid_loss || *p.valid_loss < *outcome.best_valid_loss) {
                outcome.best_valid_loss = p.valid_loss;
                if (on_new_best) on_new_best();
            }
        }
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        p.tokens_per_s = elapsed > 0 ? double(tokens) / elapsed : 0.0;
        p.eta_s = elapsed / double(step) * double(options_.steps - step);
        if (control.progress) control.progress(p);
    }
}

}  // namespace phatgoose
