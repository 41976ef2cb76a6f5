#include "ui/engine_worker.h"

#include "error.h"
#include "experts/expert_library.h"
#include "model/model_summary.h"
#include "model/t5_loader.h"
#include "routing/probe.h"
#include "store/workspace.h"

// The Results view's evaluations
#include <algorithm>
#include <nlohmann/json.hpp>

#include "eval/evaluator.h"
#include "routing/expert_examples.h"
#include "store/results_store.h"

// The Experts view and the training dialogs
#include <dlfcn.h>

#include <filesystem>
#include <optional>

#include "training/expert_trainer.h"
#include "training/gate_trainer.h"

#ifndef PHATGOOSE_VERSION
#define PHATGOOSE_VERSION "unknown"
#endif

namespace phatgoose::ui {

struct EngineWorker::Engine {
    PretrainedT5 t5;
    std::vector<LoraExpert> experts;
    std::filesystem::path library_dir;   // where new experts are saved; empty until a library is open
    std::optional<Workspace> workspace;  // set when opened as a workspace (its results database)
};

EngineWorker::EngineWorker() = default;
EngineWorker::~EngineWorker() = default;

namespace {

ModelSummaryView summaryOf(const PretrainedT5& t5) {
    const ModelSummary s = summarizeModel(t5);
    const T5Config& c = s.config;
    ModelSummaryView v;
    v.folder = QString::fromStdString(s.folder);
    v.family = QString::fromStdString(c.family());
    v.shape = QObject::tr("d_model %1, d_kv %2, %3 heads, d_ff %4, %5 encoder + %6 decoder layers")
                  .arg(c.d_model)
                  .arg(c.d_kv)
                  .arg(c.num_heads)
                  .arg(c.d_ff)
                  .arg(c.num_layers)
                  .arg(c.num_decoder_layers);
    v.vocabulary =
        QObject::tr("%1 rows (tokenizer: %2 pieces and sentinels)").arg(c.vocab_size).arg(s.tokenizer_size);
    v.parameters = QObject::tr("%L1 (%2 MB as float32)").arg(s.parameters).arg(s.weights_mb, 0, 'f', 1);
    v.dtype = QString::fromStdString(s.weight_dtype);
    v.lora_sites = QObject::tr("%1 linear layers").arg(s.lora_sites);
    return v;
}

WorkspaceView viewOf(const Workspace& ws) {
    auto q = [](const std::filesystem::path& p) { return QString::fromStdString(p.string()); };
    WorkspaceView v{.root = q(ws.root),
                    .name = QString::fromStdString(ws.name),
                    .model_dir = q(ws.model_dir),
                    .experts_dir = q(ws.experts_dir),
                    .database = q(ws.database),
                    .multitask_dir = q(ws.multitask_dir)};
    for (const WorkspaceTask& t : ws.tasks)
        v.tasks.push_back({.name = QString::fromStdString(t.name),
                           .role = QString::fromStdString(taskRoleName(t.role)),
                           .description = QString::fromStdString(t.description),
                           .example_prompt = QString::fromStdString(t.example_prompt),
                           .multiple_choice = t.multiple_choice,
                           .train = q(t.train),
                           .valid = q(t.valid),
                           .test = q(t.test)});
    return v;
}

QString firstLine(const std::exception& e) {
    return QString::fromStdString(e.what()).section('\n', 0, 0);
}

}  // namespace

void EngineWorker::openWorkspace(const QString& folder) {
    Q_EMIT busy(tr("Opening workspace %1 ...").arg(folder));
    try {
        const Workspace ws = phatgoose::openWorkspace(folder.toStdString());
        auto engine = std::make_unique<Engine>();
        engine->t5 = loadPretrainedT5(ws.model_dir);
        engine->experts = std::move(ExpertLibrary::open(ws.experts_dir, engine->t5.config).experts());
        engine->library_dir = ws.experts_dir;
        engine->workspace = ws;
        engine_ = std::move(engine);
        Q_EMIT modelOpened(summaryOf(engine_->t5));
        announceLibrary(QString::fromStdString(ws.experts_dir.string()));
        Q_EMIT workspaceOpened(viewOf(ws));
        listLibrary();
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

void EngineWorker::announceLibrary(const QString& folder) {
    QStringList names;
    for (const LoraExpert& e : engine_->experts) names << QString::fromStdString(e.name);
    Q_EMIT libraryOpened(folder, names);
}

void EngineWorker::openModel(const QString& folder) {
    Q_EMIT busy(tr("Loading %1 ...").arg(folder));
    try {
        auto engine = std::make_unique<Engine>();
        engine->t5 = loadPretrainedT5(folder.toStdString());
        engine_ = std::move(engine);
        Q_EMIT modelOpened(summaryOf(engine_->t5));
        listLibrary();  // a new model comes without experts
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

void EngineWorker::openLibrary(const QString& folder) {
    Q_EMIT busy(tr("Loading experts from %1 ...").arg(folder));
    try {
        if (!engine_) throw Error("open a model before its expert library");
        engine_->experts = std::move(ExpertLibrary::open(folder.toStdString(), engine_->t5.config).experts());
        engine_->library_dir = folder.toStdString();
        announceLibrary(folder);
        listLibrary();
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

void EngineWorker::probe(const ProbeRequest& request) {
    Q_EMIT busy(tr("Generating with %1 ...").arg(request.method));
    try {
        Q_EMIT probed(runProbe(request));
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

// ---- Results view: evaluations into the workspace's results database ----

namespace {

std::vector<Dataset> loadEvaluationDatasets(const QStringList& files) {
    if (files.isEmpty()) throw Error("evaluation: choose at least one dataset");
    std::vector<Dataset> datasets;
    for (const QString& f : files) appendDataset(datasets, loadJsonl(f.toStdString()));
    return datasets;
}

}  // namespace

void EngineWorker::evaluate(const EvaluationRequest& request) {
    cancel_ = false;  // a Cancel pressed for an earlier job must not end this one
    Q_EMIT busy(tr("Evaluating %1 ...").arg(request.methods.join(", ")));
    qint64 run = -1;
    QString status = QStringLiteral("failed");
    try {
        if (!engine_) throw Error("open a workspace before evaluating");
        EvalSettings settings;
        settings.methods = parseEvalMethods(request.methods.join(',').toStdString(), request.top_k);
        settings.batch_size = request.batch_size;
        settings.max_new_tokens = request.max_new_tokens;
        // The database first: a wrong path fails before the datasets are read.
        ResultsStore store(request.database.toStdString());
        const std::vector<Dataset> datasets = loadEvaluationDatasets(request.datasets);
        const auto examples = examplesNeededBy(settings, engine_->experts, *engine_->t5.tokenizer);
        Evaluator evaluator(*engine_->t5.model, *engine_->t5.tokenizer, engine_->experts, examples.get());
        EvalHooks hooks;
        hooks.cancel = &cancel_;
        hooks.progress = [this](const EvalProgress& p) {
            Q_EMIT evaluationProgress(p.done, p.total, QString::fromStdString(p.method),
                                      QString::fromStdString(p.dataset));
        };
        const nlohmann::json extra{{"model", engine_->t5.dir.string()}, {"source", "workbench"}};
        const StoredEvaluation stored =
            evaluateIntoStore(evaluator, store, datasets, settings, hooks,
                              evalSettingsJson(datasets, settings, extra.dump()), PHATGOOSE_VERSION);
        run = stored.run;
        status = stored.result.cancelled ? QStringLiteral("cancelled") : QStringLiteral("finished");
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT evaluationFinished(run, status);
    Q_EMIT idle();
}

// ---- Experts view and training dialogs (the shell) ----

namespace {

namespace fs = std::filesystem;

QList<ExpertRowView> rowsOf(const std::vector<LoraExpert>& experts) {
    // The library's own listing, so the table says exactly what `ExpertLibrary::listing()` says; the
    // copies share the experts' tensors, so this costs no weights.
    ExpertLibrary library;
    library.experts() = experts;
    const std::vector<ExpertListing> listing = library.listing();
    auto curve = [](const std::vector<double>& c) { return QVector<double>(c.begin(), c.end()); };
    QList<ExpertRowView> rows;
    for (size_t i = 0; i < listing.size(); ++i) {
        const ExpertListing& l = listing[i];
        const LoraExpert& e = experts[i];
        ExpertRowView row{.name = QString::fromStdString(l.name),
                          .task = QString::fromStdString(l.task),
                          .rank = l.rank,
                          .alpha = l.alpha,
                          .base_model = QString::fromStdString(l.base_model),
                          .has_gate = l.has_gate,
                          .has_gate_record = e.gate_record.has_value(),
                          .gate_loss = l.gate_loss,
                          .training_steps = l.training_steps,
                          .modules = l.modules,
                          .folder = QString::fromStdString(e.dir.string())};
        for (const std::string& t : l.targets) row.targets << QString::fromStdString(t);
        if (e.training_record) row.expert_curve = curve(e.training_record->loss_curve);
        if (e.gate_record) row.gate_curve = curve(e.gate_record->loss_curve);
        rows << row;
    }
    return rows;
}

int openBlasThreads() {
    using GetThreads = int (*)();
    auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    return get ? get() : 0;
}

LoraExpert& expertNamed(std::vector<LoraExpert>& experts, const std::string& name) {
    for (LoraExpert& e : experts)
        if (e.name == name) return e;
    throw Error("no expert named '" + name + "' is loaded");
}

// A recorded path as written, else relative to the expert's folder or the workspace (records made on
// another machine or by the demo builder may be relative).
std::optional<fs::path> existingFile(const std::string& recorded, const LoraExpert& expert,
                                     const std::optional<Workspace>& workspace) {
    if (recorded.empty()) return std::nullopt;
    std::vector<fs::path> candidates{recorded, expert.dir / recorded};
    if (workspace) candidates.push_back(workspace->root / recorded);
    for (const fs::path& p : candidates)
        if (fs::is_regular_file(p)) return p;
    return std::nullopt;
}

// The expert's own training data (DESIGN §6): the file its training record names, else the train split
// of the workspace task it was trained on (or that carries its name).
fs::path gateDataFor(const LoraExpert& expert, const std::optional<Workspace>& workspace,
                     const QString& chosen) {
    if (!chosen.isEmpty()) return chosen.toStdString();
    if (expert.training_record)
        if (auto file = existingFile(expert.training_record->dataset, expert, workspace)) return *file;
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

TrainingProgressView progressView(const QString& kind, const QString& expert, const TrainingProgress& p) {
    return {.kind = kind,
            .expert = expert,
            .step = p.step,
            .total = p.total_steps,
            .loss = p.loss,
            .learning_rate = p.learning_rate,
            .tokens_per_s = p.tokens_per_s,
            .eta_s = p.eta_s};
}

// One training run in the results database: begun on construction, finished exactly once with its loss
// curve; a run left unfinished by an unexpected exception is closed as failed. Without a database (a model
// and library opened on their own) or when not saving, it records nothing.
class RecordedRun {
public:
    RecordedRun(const std::optional<Workspace>& workspace, bool save, const std::string& kind,
                const nlohmann::json& settings) {
        if (!workspace || !save) return;
        store_.emplace(workspace->database);
        id_ = store_->beginRun(kind, settings.dump(), PHATGOOSE_VERSION);
    }
    ~RecordedRun() {
        try {
            if (store_ && !finished_) store_->finishRun(id_, RunStatus::Failed);
        } catch (...) {  // a destructor reports nothing; the run stays listed as running
        }
    }
    RecordedRun(const RecordedRun&) = delete;
    RecordedRun& operator=(const RecordedRun&) = delete;

    int64_t id() const { return id_; }
    void finish(RunStatus status, const std::string& expert, const std::string& kind,
                const std::vector<double>& curve) {
        if (!store_) return;
        std::vector<LossPoint> points;
        for (size_t i = 0; i < curve.size(); ++i)
            points.push_back({.expert = expert, .kind = kind, .step = int64_t(i + 1), .loss = curve[i]});
        if (!points.empty()) store_->addLossCurve(id_, points);
        store_->finishRun(id_, status);
        finished_ = true;
    }

private:
    std::optional<ResultsStore> store_;
    int64_t id_ = 0;
    bool finished_ = false;
};

const std::vector<double>& gateCurve(const LoraExpert& e) {
    static const std::vector<double> none;
    return e.gate_record ? e.gate_record->loss_curve : none;
}

const std::vector<double>& expertCurve(const LoraExpert& e) {
    static const std::vector<double> none;
    return e.training_record ? e.training_record->loss_curve : none;
}

// Runs `train` (which returns the trained expert) and closes the run: finished with the returned curve, or
// cancelled / failed with the curve of the steps done (`last_good`), rethrowing.
template <typename Train, typename LastGood, typename Curve>
LoraExpert trainRecorded(RecordedRun& run, const std::string& expert, const char* kind, Train train,
                         LastGood last_good, Curve curve) {
    try {
        LoraExpert trained = train();
        run.finish(RunStatus::Finished, expert, kind, curve(trained));
        return trained;
    } catch (const TrainingCancelled&) {
        run.finish(RunStatus::Cancelled, expert, kind, curve(last_good()));
        throw;
    } catch (const TrainingDiverged&) {
        run.finish(RunStatus::Failed, expert, kind, curve(last_good()));
        throw;
    }
}

void checkNewExpertName(const std::string& name, const fs::path& library) {
    if (name.empty()) throw Error("give the new expert a name");
    if (name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos)
        throw Error("'" + name + "' cannot be an expert's folder name");
    if (fs::exists(library / name))
        throw Error((library / name).string() + ": already exists; choose another name for the new expert");
}

// New experts name the same base model as the library's others, so the library still opens as one.
std::string baseModelName(const std::vector<LoraExpert>& experts, const fs::path& model_dir) {
    for (const LoraExpert& e : experts)
        if (!e.settings.base_model_name_or_path.empty()) return e.settings.base_model_name_or_path;
    return fs::weakly_canonical(fs::absolute(model_dir)).string();
}

}  // namespace

void EngineWorker::listLibrary() {
    Q_EMIT libraryListed(engine_ ? rowsOf(engine_->experts) : QList<ExpertRowView>{});
}

void EngineWorker::describeCompute() {
    const int blas = openBlasThreads();
    QString text = tr("ATen %n thread(s)", nullptr, at::get_num_threads());
    text += blas > 0 ? tr(", OpenBLAS %n thread(s)", nullptr, blas) : tr(", BLAS not OpenBLAS");
    Q_EMIT computeDescribed(text);
}

void EngineWorker::trainGates(const GateTrainingRequest& request) {
    cancel_ = false;  // a Cancel pressed for an earlier job must not end this one
    TrainingOutcomeView outcome{.kind = "train-gate", .status = "finished"};
    try {
        if (!engine_) throw Error("open a workspace before training gates");
        if (request.experts.isEmpty()) throw Error("choose at least one expert whose gate to train");
        TrainingOptions options = gateTrainingDefaults();
        options.steps = request.steps;
        options.learning_rate = request.learning_rate;
        options.batch_size = request.batch_size;
        options.seed = request.seed;
        validate(options);
        for (const QString& name : request.experts) {
            Q_EMIT busy(tr("Training the gate of %1 ...").arg(name));
            LoraExpert& expert = expertNamed(engine_->experts, name.toStdString());
            const fs::path data_path = gateDataFor(expert, engine_->workspace, request.dataset);
            const Dataset data = loadJsonl(data_path);
            const nlohmann::json settings{{"expert", expert.name},
                                          {"data", data_path.string()},
                                          {"steps", options.steps},
                                          {"learning_rate", options.learning_rate},
                                          {"batch_size", options.batch_size},
                                          {"seed", options.seed},
                                          {"model", engine_->t5.dir.string()},
                                          {"source", "workbench"}};
            RecordedRun run(engine_->workspace, request.save, "train-gate", settings);
            if (run.id() > 0) outcome.runs << run.id();
            GateTrainer trainer(*engine_->t5.model, *engine_->t5.tokenizer, options);
            const TrainingControl control{
                .progress =
                    [this, name](const TrainingProgress& p) {
                        Q_EMIT trainingProgress(progressView("train-gate", name, p));
                    },
                .cancel = &cancel_};
            LoraExpert gated = trainRecorded(
                run, expert.name, "gate", [&] { return trainer.train(expert, data, control); },
                [&] { return trainer.lastGood(); }, gateCurve);
            outcome.final_loss = gated.gate_record->final_loss;
            if (request.save) {
                saveGate(gated, expert.dir);  // before the in-memory expert changes, so both agree on failure
                expert = std::move(gated);
            }
            outcome.experts << name;
        }
    } catch (const TrainingCancelled& e) {
        outcome.status = "cancelled";
        outcome.message = firstLine(e);
    } catch (const std::exception& e) {
        outcome.status = "failed";
        outcome.message = firstLine(e);
    }
    if (request.save && !outcome.experts.isEmpty()) listLibrary();
    Q_EMIT trainingFinished(outcome);
    Q_EMIT idle();
}

void EngineWorker::trainExpert(const ExpertTrainingRequest& request) {
    cancel_ = false;
    TrainingOutcomeView outcome{.kind = "train-expert", .status = "finished"};
    Q_EMIT busy(tr("Training expert %1 ...").arg(request.name));
    try {
        if (!engine_) throw Error("open a workspace before training an expert");
        if (engine_->library_dir.empty())
            throw Error("open a workspace or an expert library first: the new expert is saved into it");
        const std::string name = request.name.trimmed().toStdString();
        checkNewExpertName(name, engine_->library_dir);
        ExpertTrainingSettings settings;
        settings.name = name;
        settings.lora.r = request.rank;
        settings.lora.lora_alpha = request.alpha;
        settings.lora.base_model_name_or_path = baseModelName(engine_->experts, engine_->t5.dir);
        settings.training.steps = request.steps;
        settings.training.learning_rate = request.learning_rate;
        settings.training.batch_size = request.batch_size;
        settings.training.seed = request.seed;
        validate(settings.training);
        const Dataset data = loadJsonl(request.dataset.toStdString());
        const nlohmann::json recorded{{"expert", name},
                                      {"data", data.path.string()},
                                      {"rank", request.rank},
                                      {"alpha", request.alpha},
                                      {"steps", request.steps},
                                      {"learning_rate", request.learning_rate},
                                      {"batch_size", request.batch_size},
                                      {"seed", request.seed},
                                      {"model", engine_->t5.dir.string()},
                                      {"source", "workbench"}};
        RecordedRun run(engine_->workspace, true, "train-expert", recorded);
        if (run.id() > 0) outcome.runs << run.id();
        ExpertTrainer trainer(*engine_->t5.model, *engine_->t5.tokenizer, settings);
        const QString shown = QString::fromStdString(name);
        const TrainingControl control{.progress =
                                          [this, shown](const TrainingProgress& p) {
                                              Q_EMIT trainingProgress(progressView("train-expert", shown, p));
                                          },
                                      .cancel = &cancel_};
        LoraExpert expert = trainRecorded(
            run, name, "expert", [&] { return trainer.train(data, nullptr, control); },
            [&] { return trainer.lastGood(); }, expertCurve);
        checkNewExpertName(name, engine_->library_dir);  // nothing appeared there while it trained
        expert.dir = engine_->library_dir / name;
        saveLoraExpert(expert, expert.dir);
        outcome.final_loss = expert.training_record->final_loss;
        auto& experts = engine_->experts;
        const auto at =
            std::find_if(experts.begin(), experts.end(), [&](const LoraExpert& e) { return e.name > name; });
        experts.insert(at, std::move(expert));  // sorted by name, as the library loads them
        outcome.experts << shown;
        // Views that know the library by its names (the Results view's methods) hear of the newcomer too.
        announceLibrary(QString::fromStdString(engine_->library_dir.string()));
        listLibrary();
    } catch (const TrainingCancelled& e) {
        outcome.status = "cancelled";
        outcome.message = firstLine(e);
    } catch (const std::exception& e) {
        outcome.status = "failed";
        outcome.message = firstLine(e);
    }
    Q_EMIT trainingFinished(outcome);
    Q_EMIT idle();
}

// ---- Probe and Compare views ----

QStringList EngineWorker::routingMethods() {
    QStringList names;
    for (const std::string& n : routingMethodNames()) names << QString::fromStdString(n);
    return names;
}

bool EngineWorker::routingMethodIsTokenWise(const QString& method) {
    return method == "phatgoose" || method == "arrow" || method == "average-activation";
}

ProbeResult EngineWorker::runProbe(const ProbeRequest& request) {
    if (!engine_) throw Error("open a model first");
    RoutingSpec spec;
    spec.method = request.method.toStdString();
    spec.top_k = request.top_k;
    spec.expert = request.expert.toStdString();
    if (spec.method == "single" && spec.expert.empty() && !engine_->experts.empty())
        spec.expert = engine_->experts.front().name;
    // Read on every probe rather than cached: training and opening libraries change the experts.
    std::unique_ptr<ExpertExamples> examples;
    if (routingMethodNeedsExamples(spec.method) && !engine_->experts.empty())
        examples =
            std::make_unique<ExpertExamples>(loadExpertExamples(engine_->experts, *engine_->t5.tokenizer));
    ProbeOutcome outcome = probePrompt(engine_->t5, engine_->experts, spec, request.prompt.toStdString(),
                                       request.max_new_tokens, examples.get());
    return {.output = QString::fromStdString(outcome.output), .trace = std::move(outcome.trace)};
}

void EngineWorker::compare(const CompareRequest& request) {
    Q_EMIT busy(tr("Comparing %1 with %2 ...").arg(request.a.method, request.b.method));
    try {
        CompareResult result;
        result.a = runProbe(request.a);
        ProbeRequest b = request.b;
        b.prompt = request.a.prompt;  // one prompt for both
        result.b = runProbe(b);
        Q_EMIT compared(result);
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

}  // namespace phatgoose::ui
