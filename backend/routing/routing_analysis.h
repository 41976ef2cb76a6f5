#pragma once
// Routing statistics over whole datasets (routing/routing_statistics.h): every example through the routed
// model, the encoder on its input and the decoder teacher-forced on its target, in padded batches; the
// router's trace is folded into per-module sums after each batch and cleared, so memory does not grow with
// the number of examples.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/t5_model.h"
#include "routing/router.h"
#include "routing/routing_statistics.h"
#include "tokenizer/tokenizer.h"

namespace phatgoose {

struct RoutingDataset {
    std::string name;
    std::vector<std::vector<int64_t>> inputs;   // token ids, eos included
    std::vector<std::vector<int64_t>> targets;  // same count; at least one id each
};

struct RoutingAnalysisProgress {
    std::string dataset;
    int64_t examples_done = 0;  // over all datasets
    int64_t examples_total = 0;
};

struct RoutingAnalysisOptions {
    int64_t batch_size = 8;
    std::function<void(const RoutingAnalysisProgress&)> progress;  // after every batch
    const std::atomic<bool>* cancel = nullptr;                     // checked between batches
};

struct RoutingAnalysis {
    RoutingStatistics statistics;  // the datasets finished (all of them unless cancelled)
    bool cancelled = false;
};

// A dataset's inputs and targets as token ids, each cut to `max_tokens` (eos kept); at most `limit` examples
// (0: all). `cut` (when given) receives how many inputs or targets were cut.
RoutingDataset tokenizeForRouting(const Dataset& dataset, const Tokenizer& tokenizer, int64_t max_tokens,
                                  int64_t limit = 0, int64_t* cut = nullptr);

// `router` is attached to `model` and records its trace (RoutingSpec::record_trace); scores need not be
// recorded. Throws phatgoose::Error on a router without a trace, mismatched inputs and targets, or bad ids.
RoutingAnalysis analyseRouting(T5ModelImpl& model, Router& router,
                               const std::vector<RoutingDataset>& datasets,
                               const RoutingAnalysisOptions& options = {});

}  // namespace phatgoose
