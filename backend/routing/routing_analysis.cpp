#include "routing/routing_analysis.h"

#include <algorithm>

#include "error.h"
#include "model/generation.h"
#include "model/token_batch.h"

namespace phatgoose {
namespace {

std::vector<std::vector<uint8_t>> maskRows(const torch::Tensor& mask) {
    const torch::Tensor m = mask.to(torch::kUInt8).contiguous();
    std::vector<std::vector<uint8_t>> rows(size_t(m.size(0)));
    const uint8_t* p = m.data_ptr<uint8_t>();
    for (int64_t r = 0; r < m.size(0); ++r)
        rows[size_t(r)].assign(p + r * m.size(1), p + (r + 1) * m.size(1));
    return rows;
}

void checkDataset(const T5Config& config, const RoutingDataset& d) {
    if (d.inputs.size() != d.targets.size())
        throw Error("routing analysis: dataset '" + d.name + "' has " + std::to_string(d.inputs.size()) +
                    " inputs but " + std::to_string(d.targets.size()) + " targets");
    for (size_t i = 0; i < d.inputs.size(); ++i) {
        const std::string where = "dataset '" + d.name + "' example " + std::to_string(i + 1);
        checkTokenIds(config, d.inputs[i], where + " input");
        checkTokenIds(config, d.targets[i], where + " target");
    }
}

// One padded batch: the encoder over the inputs, the decoder teacher-forced over the targets shifted right.
void routeBatch(T5ModelImpl& model, Router& router, const std::vector<std::vector<int64_t>>& inputs,
                const std::vector<std::vector<int64_t>>& targets, DatasetRoutingStatistics& into) {
    const T5Config& c = model.config();
    std::vector<std::vector<int64_t>> shifted;
    for (const auto& t : targets) {
        std::vector<int64_t> row{c.decoder_start_token_id};
        row.insert(row.end(), t.begin(), t.end() - 1);
        shifted.push_back(std::move(row));
    }
    const TokenBatch in = TokenBatch::fromRows(inputs, c.pad_token_id);
    const TokenBatch dec = TokenBatch::fromRows(shifted, c.pad_token_id);
    router.clearTrace();
    router.beginBatch(inputs);
    const torch::Tensor enc = model.encode(in.ids, in.mask);
    model.decode(dec.ids, enc, in.mask);
    accumulateTrace(router.trace(), maskRows(in.mask), maskRows(dec.mask), into);
    router.clearTrace();
}

}  // namespace

RoutingDataset tokenizeForRouting(const Dataset& dataset, const Tokenizer& tokenizer, int64_t max_tokens,
                                  int64_t limit, int64_t* cut) {
    RoutingDataset out{.name = dataset.name, .inputs = {}, .targets = {}};
    int64_t cuts = 0;
    for (const Example& ex : dataset.examples) {
        if (limit > 0 && int64_t(out.inputs.size()) >= limit) break;
        out.inputs.push_back(tokenizer.encode(ex.input));
        out.targets.push_back(tokenizer.encode(ex.target));
        cuts += truncateKeepingEos(out.inputs.back(), max_tokens, Tokenizer::kEos);
        cuts += truncateKeepingEos(out.targets.back(), max_tokens, Tokenizer::kEos);
    }
    if (cut) *cut = cuts;
    return out;
}

RoutingAnalysis analyseRouting(T5ModelImpl& model, Router& router,
                               const std::vector<RoutingDataset>& datasets,
                               const RoutingAnalysisOptions& options) {
    if (router.trace().sites.empty())
        throw Error("routing analysis: the router records no routing (make it with record_trace)");
    if (options.batch_size < 1) throw Error("routing analysis: the batch size must be at least 1");
    int64_t total = 0;
    for (const RoutingDataset& d : datasets) {
        checkDataset(model.config(), d);
        total += int64_t(d.inputs.size());
    }
    torch::InferenceMode guard;
    RoutingAnalysis out;
    out.statistics.method = router.trace().method;
    out.statistics.top_k = router.trace().top_k;
    out.statistics.expert_names = router.trace().expert_names;
    RoutingAnalysisProgress progress{.examples_total = total};
    for (const RoutingDataset& d : datasets) {
        DatasetRoutingStatistics stats{.name = d.name, .examples = int64_t(d.inputs.size())};
        progress.dataset = d.name;
        for (size_t start = 0; start < d.inputs.size(); start += size_t(options.batch_size)) {
            if (options.cancel && options.cancel->load()) {
                out.cancelled = true;
                return out;
            }
            const size_t end = std::min(d.inputs.size(), start + size_t(options.batch_size));
            routeBatch(model, router, {d.inputs.begin() + long(start), d.inputs.begin() + long(end)},
                       {d.targets.begin() + long(start), d.targets.begin() + long(end)}, stats);
            progress.examples_done += int64_t(end - start);
            if (options.progress) options.progress(progress);
        }
        out.statistics.datasets.push_back(std::move(stats));
    }
    return out;
}

}  // namespace phatgoose
