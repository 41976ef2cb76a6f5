#include "training/training_session.h"

#include <nlohmann/json.hpp>

#include "error.h"
#include "experts/expert_data.h"
#include "training/expert_trainer.h"
#include "training/gate_trainer.h"
#include "version.h"

namespace phatgoose {
namespace fs = std::filesystem;

fs::path gateTrainingData(const LoraExpert& expert, const Workspace* workspace) {
    if (auto file = recordedTrainingData(expert, workspace ? workspace->root : fs::path())) return *file;
    if (workspace) {
        const std::string task = expert.training_record && !expert.training_record->task.empty()
                                     ? expert.training_record->task
                                     : expert.name;
        if (const WorkspaceTask* t = workspace->task(task); t && !t->train.empty()) return t->train;
    }
    throw Error("expert '" + expert.name +
                "': its training data is unknown (no training record naming an existing file, no workspace "
                "task with a train split); choose a JSON Lines file");
}

namespace {

const char* scheduleName(LearningRateSchedule s) {
    return s == LearningRateSchedule::LinearDecay ? "linear" : "constant";
}

}  // namespace

std::string trainingRunSettings(const std::string& expert, const fs::path& data, const TrainingOptions& o,
                                const RunOrigin& origin, const LoraSettings* lora) {
    nlohmann::json j{{"expert", expert},
                     {"data", data.string()},
                     {"steps", o.steps},
                     {"learning_rate", o.learning_rate},
                     {"batch_size", o.batch_size},
                     {"accumulation_steps", o.accumulation_steps},
                     {"warmup_fraction", o.warmup_fraction},
                     {"schedule", scheduleName(o.schedule)},
                     {"max_grad_norm", o.max_grad_norm},
                     {"weight_decay", o.weight_decay},
                     {"max_input_tokens", o.max_input_tokens},
                     {"max_target_tokens", o.max_target_tokens},
                     {"seed", o.seed},
                     {"dropout", o.dropout},  // negative: the model's dropout_rate
                     {"model", origin.model_dir},
                     {"source", origin.program}};
    if (lora) {
        j["rank"] = lora->r;
        j["alpha"] = lora->lora_alpha;
        j["rslora"] = lora->use_rslora;
    }
    return j.dump();
}

RecordedTrainingRun::RecordedTrainingRun(const std::optional<fs::path>& database, const std::string& kind,
                                         const std::string& settings_json)
    : curve_kind_(kind == kTrainGateRun ? "gate" : "expert") {
    if (!database) return;
    store_.emplace(*database);
    id_ = store_->beginRun(kind, settings_json, PHATGOOSE_VERSION);
}

RecordedTrainingRun::~RecordedTrainingRun() {
    try {
        if (store_ && !closed_) store_->finishRun(id_, RunStatus::Failed);
    } catch (...) {  // a destructor reports nothing; the run stays listed as running
    }
}

std::optional<fs::path> RecordedTrainingRun::database() const {
    if (!store_) return std::nullopt;
    return store_->file();
}

void RecordedTrainingRun::close(RunStatus status, const std::string& expert,
                                const std::vector<double>& curve) {
    if (!store_ || closed_) return;
    store_->addLossCurve(id_, expert, curve_kind_, curve);
    store_->finishRun(id_, status);
    closed_ = true;
}

namespace {

const std::vector<double>& gateCurve(const LoraExpert& e) {
    static const std::vector<double> none;
    return e.gate_record ? e.gate_record->loss_curve : none;
}

const std::vector<double>& expertCurve(const LoraExpert& e) {
    static const std::vector<double> none;
    return e.training_record ? e.training_record->loss_curve : none;
}

// Runs `train` and closes the run: finished with the trained expert's curve, or cancelled / failed with the
// curve of the updates done (the trainer's last good weights), rethrowing.
template <typename Trainer, typename Train, typename Curve>
LoraExpert trainAndClose(Trainer& trainer, const std::string& expert, Train train, Curve curve,
                         RecordedTrainingRun& run, LoraExpert* last_good) {
    auto stopped = [&](RunStatus status) {
        LoraExpert last = trainer.lastGood();
        run.close(status, expert, curve(last));
        if (last_good) *last_good = std::move(last);
    };
    try {
        LoraExpert trained = train();
        run.close(RunStatus::Finished, expert, curve(trained));
        return trained;
    } catch (const TrainingCancelled&) {
        stopped(RunStatus::Cancelled);
        throw;
    } catch (const TrainingDiverged&) {
        stopped(RunStatus::Failed);
        throw;
    }
}

}  // namespace

LoraExpert trainGateRecorded(T5ModelImpl& model, const Tokenizer& tokenizer, const TrainingOptions& options,
                             const LoraExpert& expert, const Dataset& data, const TrainingControl& control,
                             RecordedTrainingRun& run, LoraExpert* last_good) {
    GateTrainer trainer(model, tokenizer, options);
    return trainAndClose(
        trainer, expert.name, [&] { return trainer.train(expert, data, control); }, gateCurve, run,
        last_good);
}

LoraExpert trainExpertRecorded(T5ModelImpl& model, const Tokenizer& tokenizer,
                               const ExpertTrainingSettings& settings, const Dataset& train,
                               const Dataset* valid, const TrainingControl& control, RecordedTrainingRun& run,
                               LoraExpert* last_good) {
    ExpertTrainer trainer(model, tokenizer, settings);
    return trainAndClose(
        trainer, settings.name, [&] { return trainer.train(train, valid, control); }, expertCurve, run,
        last_good);
}

void checkNewExpertName(const std::string& name, const fs::path& library) {
    if (name.empty()) throw Error("give the new expert a name");
    if (name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos)
        throw Error("'" + name + "' cannot be an expert's folder name");
    if (fs::exists(library / name))
        throw Error((library / name).string() + ": already exists; choose another name for the new expert");
}

std::string libraryBaseModel(const std::vector<LoraExpert>& experts, const fs::path& model_dir) {
    for (const LoraExpert& e : experts)
        if (!e.settings.base_model_name_or_path.empty()) return e.settings.base_model_name_or_path;
    return fs::weakly_canonical(fs::absolute(model_dir)).string();
}

}  // namespace phatgoose
