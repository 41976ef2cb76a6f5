#pragma once
// The evaluation grid: routing methods x datasets, scored by the paper's metrics (rank classification
// over `choices`, exact match for generation), batched, with progress and cancellation between batches.
// The same inputs give the same numbers.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "eval/eval_settings.h"
#include "eval/metrics.h"
#include "routing/router.h"
#include "tokenizer/tokenizer.h"

namespace phatgoose {

class ResultsStore;

struct EvalProgress {
    int64_t done = 0, total = 0;  // examples, over the whole grid
    std::string method, dataset;
};

struct EvalCell {
    std::string method;  // EvalMethod::label
    int64_t top_k = 0;   // 0 for methods without k
    size_t dataset_index = 0;
    DatasetScore score;
};

struct EvalResult {
    std::vector<EvalCell> cells;  // method-major, in the order asked
    bool cancelled = false;
    // One sentence each, for the user: inputs cut to the limit (counted per dataset), experts a method left
    // out (Router::warnings()).
    std::vector<std::string> warnings;
    double average(const std::string& method) const;  // over the method's datasets
};

struct EvalHooks {
    std::function<void(const EvalProgress&)> progress;
    std::function<void(const EvalCell&)> cell_done;  // each finished cell, before the next starts
    const std::atomic<bool>* cancel = nullptr;       // checked between batches
};

class Evaluator {
public:
    // `examples` is needed only by retrieval and average-activation. All references must outlive the object.
    Evaluator(T5ModelImpl& model, const Tokenizer& tokenizer, const std::vector<LoraExpert>& experts,
              const ExpertExamples* examples = nullptr);

    EvalResult run(const std::vector<Dataset>& datasets, const EvalSettings& settings,
                   const EvalHooks& hooks = {});
    // The mistakes caught before any work (no library, unknown single expert, missing examples); run()
    // calls it too. Throws phatgoose::Error.
    void checkSettings(const EvalSettings& settings) const;

private:
    struct Tokenized;
    struct Progress;
    bool scoreDataset(const Dataset& dataset, const Tokenized& tokens, Router* router,
                      const EvalSettings& settings, const EvalHooks& hooks, Progress& progress,
                      DatasetScore& score);

    T5ModelImpl& model_;
    const Tokenizer& tokenizer_;
    const std::vector<LoraExpert>& experts_;
    const ExpertExamples* examples_;
};

// Adds `dataset` to a grid's datasets; refuses a second one with the same name, since results are kept by
// dataset name.
void appendDataset(std::vector<Dataset>& grid, Dataset dataset);

// The experts' training examples when a method of `settings` needs them (retrieval, average-activation),
// else null; `override_dir` as for loadExpertExamples.
std::unique_ptr<ExpertExamples> examplesNeededBy(const EvalSettings& settings,
                                                 const std::vector<LoraExpert>& experts,
                                                 const Tokenizer& tokenizer,
                                                 const std::filesystem::path& override_dir = {});

// What a run records as its settings: methods, k, batch, datasets (paths and skipped lines).
std::string evalSettingsJson(const std::vector<Dataset>& datasets, const EvalSettings& settings,
                             const std::string& extra_json = "{}");

struct StoredEvaluation {
    int64_t run = 0;
    EvalResult result;
};

// Runs the grid as one "eval" run of `store`: each cell is committed as it finishes, and the run ends
// finished, cancelled, or failed (the exception is then rethrown).
StoredEvaluation evaluateIntoStore(Evaluator& evaluator, ResultsStore& store,
                                   const std::vector<Dataset>& datasets, const EvalSettings& settings,
                                   const EvalHooks& hooks, const std::string& settings_json,
                                   const std::string& version);

}  // namespace phatgoose
