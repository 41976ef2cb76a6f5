#include "routing/expert_examples.h"

#include "data/dataset.h"
#include "error.h"
#include "experts/expert_data.h"

namespace phatgoose {
namespace fs = std::filesystem;

namespace {

fs::path datasetOf(const LoraExpert& expert, const fs::path& override_dir) {
    if (!override_dir.empty()) return override_dir / (expert.name + ".jsonl");
    if (auto recorded = recordedTrainingData(expert)) return *recorded;
    if (!expert.training_record || expert.training_record->dataset.empty())
        throw Error("expert '" + expert.name + "' records no training dataset; pass the examples folder (" +
                    "<folder>/" + expert.name + ".jsonl) explicitly");
    // Named but missing: reading it reports the file.
    const fs::path p(expert.training_record->dataset);
    return p.is_absolute() ? p : expert.dir / p;
}

}  // namespace

ExpertExamples loadExpertExamples(const std::vector<LoraExpert>& experts, const Tokenizer& tokenizer,
                                  const fs::path& override_dir) {
    ExpertExamples out;
    for (const LoraExpert& e : experts) {
        Dataset data = loadJsonl(datasetOf(e, override_dir));
        auto& inputs = out.inputs.emplace_back();
        auto& targets = out.targets.emplace_back();
        for (const Example& ex : data.examples) {
            if (inputs.size() == ExpertExamples::kMaxExamplesPerExpert) break;
            inputs.push_back(tokenizer.encode(ex.input));
            targets.push_back(tokenizer.encode(ex.target));
        }
    }
    return out;
}

}  // namespace phatgoose
