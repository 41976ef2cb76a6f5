#pragma once
// Training a gate or an expert as a recorded run: the one place that decides which data an expert's gate
// trains on, what a run records as its settings, and how a run and its loss curve reach the results
// database. `phatgoose train-gate` / `train-expert` and the workbench's training dialogs both go through
// it, so a run looks the same whichever started it.
#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "experts/lora_expert.h"
#include "model/t5_model.h"
#include "store/results_store.h"
#include "store/workspace.h"
#include "tokenizer/tokenizer.h"
#include "training/training_options.h"

namespace phatgoose {

// Where an expert's gate is trained when no file is chosen (the expert's own training data,
// docs/ARCHITECTURE.md, "PHATGOOSE gate training"): the dataset its training record names (resolved as
// recordedTrainingData() does), else the train split of the workspace task it was trained on or that
// carries its name. Throws phatgoose::Error naming the expert when neither exists.
std::filesystem::path gateTrainingData(const LoraExpert& expert, const Workspace* workspace);

// Who asks for a run: recorded with its settings so that a run can be traced back.
struct RunOrigin {
    std::string model_dir;
    std::string program;  // "cli" or "workbench"
};

// A training run's settings as the database keeps them: the same keys from the CLI and the workbench.
std::string trainingRunSettings(const std::string& expert, const std::filesystem::path& data,
                                const TrainingOptions& options, const RunOrigin& origin,
                                const LoraSettings* lora = nullptr);

// One training run in a results database: begun ("running") on construction, then closed exactly once with
// its status and the loss curve of the updates done. A run never closed (an unexpected exception) is closed
// as failed by the destructor. Without a database it records nothing.
class RecordedTrainingRun {
public:
    RecordedTrainingRun(const std::optional<std::filesystem::path>& database, const std::string& kind,
                        const std::string& settings_json);
    ~RecordedTrainingRun();
    RecordedTrainingRun(const RecordedTrainingRun&) = delete;
    RecordedTrainingRun& operator=(const RecordedTrainingRun&) = delete;

    int64_t id() const { return id_; }  // 0 when nothing is recorded
    std::optional<std::filesystem::path> database() const;
    void close(RunStatus status, const std::string& expert, const std::vector<double>& curve);

private:
    std::optional<ResultsStore> store_;
    std::string curve_kind_;  // "gate" or "expert": what the curve's rows say they are
    int64_t id_ = 0;
    bool closed_ = false;
};

// Trains the gate of `expert` on `data` and closes `run`: finished with the curve, or cancelled / failed
// (divergence) with the curve of the updates done, rethrowing. Writes no file: callers save what returns.
LoraExpert trainGateRecorded(T5ModelImpl& model, const Tokenizer& tokenizer, const TrainingOptions& options,
                             const LoraExpert& expert, const Dataset& data, const TrainingControl& control,
                             RecordedTrainingRun& run, LoraExpert* last_good = nullptr);

// The same for a new expert (ExpertTrainer), with an optional validation set.
struct ExpertTrainingSettings;
LoraExpert trainExpertRecorded(T5ModelImpl& model, const Tokenizer& tokenizer,
                               const ExpertTrainingSettings& settings, const Dataset& train,
                               const Dataset* valid, const TrainingControl& control, RecordedTrainingRun& run,
                               LoraExpert* last_good = nullptr);

// A new expert's folder name inside `library`: not empty, no path separators, not "." or "..", and not
// taken. Throws phatgoose::Error saying which.
void checkNewExpertName(const std::string& name, const std::filesystem::path& library);

// The base model a new expert in a library names: the one its other experts name (so that the library
// still opens as one), else the model folder's canonical path.
std::string libraryBaseModel(const std::vector<LoraExpert>& experts, const std::filesystem::path& model_dir);

}  // namespace phatgoose
