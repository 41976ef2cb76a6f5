#pragma once
// The two kinds of cluster run as manifests: a gate array (one `train-gate` per expert, on a staging copy in
// its task folder) and an eval grid (one `eval` per method x dataset cell, into its own database). The CLI
// (`phatgoose cluster`) and the workbench's dialogs build their runs here.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cluster/cluster_run.h"

namespace phatgoose {

struct GateArrayPlan {
    std::string model, experts;     // folders
    std::vector<std::string> only;  // expert names; empty: every expert of the library
    std::string data;               // one file for every gate; empty: each expert's own training data
    // Options passed to every `train-gate` as given: {"preset", "paper"}, {"steps", "100"}, ...
    std::vector<std::pair<std::string, std::string>> options;
};

struct EvalGridPlan {
    std::string model, experts;
    std::vector<std::string> data, methods;  // datasets (JSON Lines) and method labels as `eval --methods`
    int64_t top_k = 2;
};

// Throws phatgoose::Error naming what is wrong (an unknown expert, a missing dataset, nothing to run).
ClusterManifest gateArrayManifest(const GateArrayPlan& plan, const std::filesystem::path& run_dir,
                                  const std::string& phatgoose, const SlurmOptions& slurm);
ClusterManifest evalGridManifest(const EvalGridPlan& plan, const std::filesystem::path& run_dir,
                                 const std::string& phatgoose, const SlurmOptions& slurm);

// The `phatgoose` program that array tasks run when none is named: this program if it is `phatgoose`, else
// the one beside it; empty when there is none.
std::string phatgooseBesideThisProgram();

}  // namespace phatgoose
