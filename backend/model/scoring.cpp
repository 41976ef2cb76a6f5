#include "model/scoring.h"

#include "error.h"
#include "model/generation.h"
#include "model/token_batch.h"

namespace phatgoose {
namespace {

// Teacher-forced scores of targets against encoder rows chosen by `rows` ([targets] int64 indices into the
// encoder batch), so that one encoded input can serve many choices.
std::vector<TargetScore> scoreAgainst(T5ModelImpl& model, const torch::Tensor& enc,
                                      const torch::Tensor& enc_mask, const torch::Tensor& rows,
                                      const std::vector<std::vector<int64_t>>& targets) {
    const T5Config& c = model.config();
    std::vector<std::vector<int64_t>> decoder_inputs;
    for (const auto& t : targets) {
        std::vector<int64_t> shifted{c.decoder_start_token_id};
        shifted.insert(shifted.end(), t.begin(), t.end() - 1);
        decoder_inputs.push_back(std::move(shifted));
    }
    TokenBatch dec = TokenBatch::fromRows(decoder_inputs, c.pad_token_id);
    TokenBatch gold = TokenBatch::fromRows(targets, c.pad_token_id);
    torch::Tensor logits = model.decode(dec.ids, enc.index_select(0, rows), enc_mask.index_select(0, rows));
    torch::Tensor logp =
        torch::log_softmax(logits, -1).gather(2, gold.ids.unsqueeze(2)).squeeze(2);  // [n, len]
    torch::Tensor sums = (logp * gold.mask.to(torch::kFloat)).sum(1).to(torch::kDouble);
    std::vector<TargetScore> out(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
        out[i].tokens = int64_t(targets[i].size());
        out[i].sum = sums[int64_t(i)].item<double>();
        out[i].mean = out[i].sum / double(out[i].tokens);
    }
    return out;
}

}  // namespace

std::vector<TargetScore> scoreTargets(T5ModelImpl& model, const std::vector<std::vector<int64_t>>& inputs,
                                      const std::vector<std::vector<int64_t>>& targets) {
    if (inputs.size() != targets.size()) throw Error("scoring: inputs and targets differ in number");
    for (size_t i = 0; i < inputs.size(); ++i) {
        checkTokenIds(model.config(), inputs[i], "input " + std::to_string(i));
        checkTokenIds(model.config(), targets[i], "target " + std::to_string(i));
    }
    torch::InferenceMode guard;
    TokenBatch in = TokenBatch::fromRows(inputs, model.config().pad_token_id);
    torch::Tensor enc = model.encode(in.ids, in.mask);
    return scoreAgainst(model, enc, in.mask, torch::arange(int64_t(inputs.size()), torch::kLong), targets);
}

RankResult rankChoices(T5ModelImpl& model, const std::vector<int64_t>& input,
                       const std::vector<std::vector<int64_t>>& choices) {
    if (choices.empty()) throw Error("rank classification: no answer choices");
    checkTokenIds(model.config(), input, "input");
    for (size_t i = 0; i < choices.size(); ++i)
        checkTokenIds(model.config(), choices[i], "choice " + std::to_string(i));
    torch::InferenceMode guard;
    TokenBatch in = TokenBatch::fromRows({input}, model.config().pad_token_id);
    torch::Tensor enc = model.encode(in.ids, in.mask);
    RankResult result;
    result.scores =
        scoreAgainst(model, enc, in.mask, torch::zeros({int64_t(choices.size())}, torch::kLong), choices);
    for (size_t i = 0; i < result.scores.size(); ++i)
        if (result.best < 0 || result.scores[i].mean > result.scores[size_t(result.best)].mean)
            result.best = int64_t(i);
    return result;
}

}  // namespace phatgoose
