#pragma once
// Views of routing statistics (routing/routing_statistics.h) that the Routing analysis tab and reports draw:
// the datasets x experts weight matrix over a chosen set of modules, one dataset's per-layer profile of an
// expert, cosine similarity between datasets' routing, and an order that puts similar rows side by side.
// Plain data, no LibTorch.
#include <cstdint>
#include <string>
#include <vector>

#include "routing/routing_statistics.h"

namespace phatgoose {

// Where a routed module sits, read from its name ("decoder.block.3.layer.1.EncDecAttention.k").
struct SiteAddress {
    bool decoder = false;
    int64_t block = 0;
    std::string kind;  // "EncDecAttention.k"
};
SiteAddress parseSiteName(const std::string& site);  // throws phatgoose::Error on any other form

// Which modules to average over: a stack (or both), one block (or all, -1), one kind (or all, "").
struct ModuleSelection {
    enum class Stack { Both, Encoder, Decoder };
    Stack stack = Stack::Both;
    int64_t block = -1;
    std::string kind;
    bool matches(const SiteAddress& address) const;
};

// [dataset][expert]: each expert's mean routing weight averaged over the dataset's selected modules (0 for a
// dataset with none selected).
std::vector<std::vector<double>> datasetExpertWeights(const RoutingStatistics& statistics,
                                                      const ModuleSelection& selection);

// One value per block of `decoder`'s stack (index = block): the expert's mean weight averaged over that
// block's modules of `kind` ("" = every kind); NaN for a block with no such module.
std::vector<double> layerProfile(const DatasetRoutingStatistics& dataset, size_t expert, bool decoder,
                                 const std::string& kind = {});

// [i][j]: cosine of rows i and j (0 when either is all zeros).
std::vector<std::vector<double>> cosineSimilarity(const std::vector<std::vector<double>>& rows);

// A permutation of the rows in which each row is followed by the most similar (cosine) of those not yet
// placed, starting from row 0: tasks that route alike end up side by side. Deterministic (ties: lower index).
std::vector<size_t> similarityOrder(const std::vector<std::vector<double>>& rows);

}  // namespace phatgoose
