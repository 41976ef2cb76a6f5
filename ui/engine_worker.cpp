#include "ui/engine_worker.h"

#include "error.h"
#include "experts/expert_exclusion.h"
#include "experts/expert_library.h"
#include "model/compute_policy.h"
#include "model/model_summary.h"
#include "model/t5_loader.h"
#include "routing/probe.h"
#include "store/workspace.h"

// The Results view's evaluations
#include <algorithm>
#include <nlohmann/json.hpp>

#include "eval/evaluator.h"
#include "routing/expert_examples.h"
#include "routing/routing_analysis.h"
#include "store/results_store.h"

// The Experts view and the training dialogs

#include <filesystem>
#include <optional>

#include "experts/rthree_library.h"
#include "training/expert_trainer.h"
#include "training/training_session.h"
#include "version.h"

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

QStringList qStringList(const std::vector<std::string>& texts) {
    QStringList out;
    for (const std::string& t : texts) out << QString::fromStdString(t);
    return out;
}

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

LibraryOpening EngineWorker::opening() {
    cancel_ = false;  // a Cancel pressed for an earlier job must not end this one
    return {[this](int64_t done, int64_t total, int64_t bytes) {
                Q_EMIT openingProgress(int(done), int(total), double(bytes) / 1e9);
            },
            &cancel_};
}

// A failed opening says why; a cancelled one only that it was cancelled (nothing was changed).
void EngineWorker::reportOpeningFailure(const std::exception& e) {
    if (cancel_)
        Q_EMIT openingCancelled();
    else
        Q_EMIT failed(firstLine(e));
}

void EngineWorker::openWorkspace(const QString& folder) {
    Q_EMIT busy(tr("Opening workspace %1 ...").arg(folder));
    try {
        const Workspace ws = phatgoose::openWorkspace(folder.toStdString());
        auto engine = std::make_unique<Engine>();
        engine->t5 = loadPretrainedT5(ws.model_dir);
        engine->experts =
            std::move(ExpertLibrary::open(ws.experts_dir, engine->t5.config, opening()).experts());
        engine->library_dir = ws.experts_dir;
        engine->workspace = ws;
        engine_ = std::move(engine);
        Q_EMIT modelOpened(summaryOf(engine_->t5));
        announceLibrary(QString::fromStdString(ws.experts_dir.string()));
        Q_EMIT workspaceOpened(viewOf(ws));
        listLibrary();
    } catch (const std::exception& e) {
        reportOpeningFailure(e);
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
        // Into a local first: a cancelled or failed opening leaves the open library as it was.
        std::vector<LoraExpert> experts =
            std::move(ExpertLibrary::open(folder.toStdString(), engine_->t5.config, opening()).experts());
        engine_->experts = std::move(experts);
        engine_->library_dir = folder.toStdString();
        announceLibrary(folder);
        listLibrary();
    } catch (const std::exception& e) {
        reportOpeningFailure(e);
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
    QStringList warnings;
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
        warnings = qStringList(stored.result.warnings);
        status = stored.result.cancelled ? QStringLiteral("cancelled") : QStringLiteral("finished");
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT evaluationFinished(run, status, warnings);
    Q_EMIT idle();
}

namespace {

std::vector<std::string> excludedNames(const QStringList& exclude) {
    std::vector<std::string> names;
    for (const QString& n : exclude) names.push_back(n.toStdString());
    return names;
}

// The open library, less the experts a what-if request leaves out (the copies share the experts' tensors).
std::vector<LoraExpert> routedExperts(const std::vector<LoraExpert>& experts, const QStringList& exclude) {
    return exclude.isEmpty() ? experts : withoutExperts(experts, excludedNames(exclude));
}

}  // namespace

void EngineWorker::analyseRouting(const RoutingAnalysisRequest& request) {
    cancel_ = false;
    Q_EMIT busy(tr("Analysing routing (%1, top-%2) ...").arg(request.method).arg(request.top_k));
    qint64 run = -1;
    QString status = QStringLiteral("failed");
    try {
        if (!engine_) throw Error("open a workspace before analysing routing");
        ResultsStore store(request.database.toStdString());
        std::vector<RoutingDataset> datasets;
        nlohmann::json files = nlohmann::json::array();
        for (const QString& file : request.datasets) {
            const Dataset d = loadJsonl(file.toStdString());
            datasets.push_back(
                tokenizeForRouting(d, *engine_->t5.tokenizer, EvalSettings{}.max_input_tokens));
            files.push_back(d.path.string());
        }
        RoutingSpec spec;
        spec.method = request.method.toStdString();
        spec.top_k = request.top_k;
        spec.record_trace = true;
        const std::vector<LoraExpert> experts = routedExperts(engine_->experts, request.exclude);
        std::unique_ptr<ExpertExamples> examples;
        if (routingMethod(spec.method).needs_examples)
            examples = std::make_unique<ExpertExamples>(loadExpertExamples(experts, *engine_->t5.tokenizer));
        const auto router = makeRouter(*engine_->t5.model, experts, spec, examples.get());
        RoutingAnalysisOptions options{.batch_size = request.batch_size, .progress = {}, .cancel = &cancel_};
        options.progress = [this](const RoutingAnalysisProgress& p) {
            Q_EMIT routingAnalysisProgress(p.examples_done, p.examples_total,
                                           QString::fromStdString(p.dataset));
        };
        const RoutingAnalysis analysis =
            phatgoose::analyseRouting(*engine_->t5.model, *router, datasets, options);
        const nlohmann::json settings{{"model", engine_->t5.dir.string()},
                                      {"data", files},
                                      {"batch", request.batch_size},
                                      {"exclude", excludedNames(request.exclude)},
                                      {"source", "workbench"}};
        run = store.saveRoutingAnalysis(analysis.statistics, analysis.cancelled, settings.dump(),
                                        PHATGOOSE_VERSION);
        status = analysis.cancelled ? QStringLiteral("cancelled") : QStringLiteral("finished");
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT routingAnalysisFinished(run, status);
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

LoraExpert& expertNamed(std::vector<LoraExpert>& experts, const std::string& name) {
    for (LoraExpert& e : experts)
        if (e.name == name) return e;
    throw Error("no expert named '" + name + "' is loaded");
}

// Runs a training job and sets the outcome's status: it stays "finished" unless the job was cancelled
// (TrainingCancelled) or failed (any other exception), with the reason for people.
template <typename Job>
void runTrainingJob(TrainingOutcomeView& outcome, Job job) {
    try {
        job();
    } catch (const TrainingCancelled& e) {
        outcome.status = "cancelled";
        outcome.message = firstLine(e);
    } catch (const std::exception& e) {
        outcome.status = "failed";
        outcome.message = firstLine(e);
    }
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

}  // namespace

void EngineWorker::listLibrary() {
    Q_EMIT libraryListed(engine_ ? rowsOf(engine_->experts) : QList<ExpertRowView>{});
}

void EngineWorker::startCompute() {
    applyComputePolicy(0);  // on this thread: LibTorch's thread count is kept per thread
    const ComputeThreads threads = computeThreads();
    QString text =
        threads.blas > 0 ? tr("OpenBLAS %n thread(s)", nullptr, threads.blas) : tr("BLAS not OpenBLAS");
    text += tr(", engine kernels %n thread(s), ATen %1", nullptr, threads.kernels).arg(threads.aten);
    Q_EMIT computeDescribed(text);
}

// Where a run is recorded: the workspace's database when saving, else nowhere.
std::optional<fs::path> EngineWorker::runDatabase(bool save) const {
    if (!save || !engine_->workspace) return std::nullopt;
    return engine_->workspace->database;
}

void EngineWorker::trainGates(const GateTrainingRequest& request) {
    cancel_ = false;  // a Cancel pressed for an earlier job must not end this one
    TrainingOutcomeView outcome{.kind = kTrainGateRun, .status = "finished"};
    runTrainingJob(outcome, [&] {
        if (!engine_) throw Error("open a workspace before training gates");
        if (request.experts.isEmpty()) throw Error("choose at least one expert whose gate to train");
        validate(request.options);
        const RunOrigin origin{.model_dir = engine_->t5.dir.string(), .program = "workbench"};
        for (const QString& name : request.experts) {
            Q_EMIT busy(tr("Training the gate of %1 ...").arg(name));
            LoraExpert& expert = expertNamed(engine_->experts, name.toStdString());
            const Workspace* workspace = engine_->workspace ? &*engine_->workspace : nullptr;
            const fs::path data_path = request.dataset.isEmpty() ? gateTrainingData(expert, workspace)
                                                                 : fs::path(request.dataset.toStdString());
            const Dataset data = loadJsonl(data_path);
            RecordedTrainingRun run(runDatabase(request.save), kTrainGateRun,
                                    trainingRunSettings(expert.name, data_path, request.options, origin));
            if (run.id() > 0) outcome.runs << run.id();
            const TrainingControl control{
                .progress =
                    [this, name](const TrainingProgress& p) {
                        Q_EMIT trainingProgress(progressView(kTrainGateRun, name, p));
                    },
                .cancel = &cancel_};
            LoraExpert gated = trainGateRecorded(*engine_->t5.model, *engine_->t5.tokenizer, request.options,
                                                 expert, data, control, run);
            outcome.final_loss = gated.gate_record->final_loss;
            if (request.save) {
                saveGate(gated, expert.dir);  // before the in-memory expert changes, so both agree on failure
                expert = std::move(gated);
            }
            outcome.experts << name;
        }
    });
    if (request.save && !outcome.experts.isEmpty()) listLibrary();
    Q_EMIT trainingFinished(outcome);
    Q_EMIT idle();
}

void EngineWorker::trainExpert(const ExpertTrainingRequest& request) {
    cancel_ = false;
    TrainingOutcomeView outcome{.kind = kTrainExpertRun, .status = "finished"};
    Q_EMIT busy(tr("Training expert %1 ...").arg(request.name));
    runTrainingJob(outcome, [&] {
        if (!engine_) throw Error("open a workspace before training an expert");
        if (engine_->library_dir.empty())
            throw Error("open a workspace or an expert library first: the new expert is saved into it");
        const std::string name = request.name.trimmed().toStdString();
        checkNewExpertName(name, engine_->library_dir);
        ExpertTrainingSettings settings;
        settings.name = name;
        settings.lora.r = request.rank;
        settings.lora.lora_alpha = request.alpha;
        settings.lora.base_model_name_or_path = libraryBaseModel(engine_->experts, engine_->t5.dir);
        settings.training = request.options;
        validate(settings.training);
        const Dataset data = loadJsonl(request.dataset.toStdString());
        const RunOrigin origin{.model_dir = engine_->t5.dir.string(), .program = "workbench"};
        RecordedTrainingRun run(
            runDatabase(true), kTrainExpertRun,
            trainingRunSettings(name, data.path, settings.training, origin, &settings.lora));
        if (run.id() > 0) outcome.runs << run.id();
        const QString shown = QString::fromStdString(name);
        const TrainingControl control{
            .progress =
                [this, shown](const TrainingProgress& p) {
                    Q_EMIT trainingProgress(progressView(kTrainExpertRun, shown, p));
                },
            .cancel = &cancel_};
        LoraExpert expert = trainExpertRecorded(*engine_->t5.model, *engine_->t5.tokenizer, settings, data,
                                                nullptr, control, run);
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
    });
    Q_EMIT trainingFinished(outcome);
    Q_EMIT idle();
}

// ---- Importing an expert library ----

void EngineWorker::importLibrary(const LibraryImportRequest& request) {
    cancel_ = false;
    LibraryImportOutcomeView outcome{.status = "finished"};
    Q_EMIT busy(tr("Importing %1 ...").arg(request.source));
    try {
        if (!engine_) throw Error("open the base model (or a workspace) before importing its experts");
        fs::path library = request.source.toStdString();
        if (!fs::is_directory(library)) {
            if (request.out.isEmpty()) throw Error("choose the folder for the imported library");
            RThreeImportOptions options{.checkpoint = library,
                                        .model_dir = engine_->t5.dir,
                                        .out = request.out.toStdString(),
                                        .bf16 = request.bf16};
            const RThreeImportReport report = importRThreeLibrary(
                options,
                [this](const RThreeProgress& p) {
                    Q_EMIT libraryImportProgress({.experts_done = p.experts_done,
                                                  .experts_total = p.experts_total,
                                                  .gb_read = double(p.bytes_read) / 1e9,
                                                  .gb_total = double(p.bytes_total) / 1e9});
                },
                &cancel_);
            outcome.warnings = qStringList(report.warnings);
            library = options.out;
        }
        engine_->experts = std::move(ExpertLibrary::open(library, engine_->t5.config).experts());
        engine_->library_dir = library;
        outcome.library = QString::fromStdString(library.string());
        outcome.experts = qint64(engine_->experts.size());
        announceLibrary(outcome.library);
        listLibrary();
    } catch (const std::exception& e) {
        outcome.status = cancel_ ? "cancelled" : "failed";
        outcome.message = firstLine(e);
    }
    Q_EMIT libraryImportFinished(outcome);
    Q_EMIT idle();
}

// ---- Probe and Compare views ----

ProbeResult EngineWorker::runProbe(const ProbeRequest& request) {
    if (!engine_) throw Error("open a model first");
    RoutingSpec spec;
    spec.method = request.method.toStdString();
    spec.top_k = request.top_k;
    spec.expert = request.expert.toStdString();
    spec.pin = request.pin;
    const RoutingMethod& method = routingMethod(spec.method);
    if (method.names_an_expert && spec.expert.empty() && !engine_->experts.empty())
        spec.expert = engine_->experts.front().name;
    // Read on every probe rather than cached: training and opening libraries change the experts.
    const std::vector<LoraExpert> experts = routedExperts(engine_->experts, request.exclude);
    std::unique_ptr<ExpertExamples> examples;
    if (method.needs_examples && !experts.empty())
        examples = std::make_unique<ExpertExamples>(loadExpertExamples(experts, *engine_->t5.tokenizer));
    ProbeOutcome outcome = probePrompt(engine_->t5, experts, spec, request.prompt.toStdString(),
                                       request.max_new_tokens, examples.get());
    ProbeResult result{.output = QString::fromStdString(outcome.output), .trace = std::move(outcome.trace)};
    result.warnings = qStringList(outcome.warnings);
    return result;
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
