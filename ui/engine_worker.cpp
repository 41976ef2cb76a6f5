#include "ui/engine_worker.h"

#include "error.h"
#include "experts/expert_library.h"
#include "model/model_summary.h"
#include "model/t5_loader.h"
#include "routing/probe.h"
#include "store/workspace.h"

namespace phatgoose::ui {

struct EngineWorker::Engine {
    PretrainedT5 t5;
    std::vector<LoraExpert> experts;
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
    WorkspaceView v{.root = q(ws.root), .name = QString::fromStdString(ws.name), .model_dir = q(ws.model_dir),
                    .experts_dir = q(ws.experts_dir), .database = q(ws.database),
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
        engine_ = std::move(engine);
        Q_EMIT modelOpened(summaryOf(engine_->t5));
        QStringList names;
        for (const auto& e : engine_->experts) names << QString::fromStdString(e.name);
        Q_EMIT libraryOpened(QString::fromStdString(ws.experts_dir.string()), names);
        Q_EMIT workspaceOpened(viewOf(ws));
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

void EngineWorker::openModel(const QString& folder) {
    Q_EMIT busy(tr("Loading %1 ...").arg(folder));
    try {
        auto engine = std::make_unique<Engine>();
        engine->t5 = loadPretrainedT5(folder.toStdString());
        engine_ = std::move(engine);
        Q_EMIT modelOpened(summaryOf(engine_->t5));
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
        QStringList names;
        for (const auto& e : engine_->experts) names << QString::fromStdString(e.name);
        Q_EMIT libraryOpened(folder, names);
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

void EngineWorker::probe(const ProbeRequest& request) {
    Q_EMIT busy(tr("Generating with %1 ...").arg(request.method));
    try {
        if (!engine_) throw Error("open a model first");
        PretrainedT5& t5 = engine_->t5;
        RoutingSpec spec;
        spec.method = request.method.toStdString();
        spec.top_k = request.top_k;
        if (spec.method == "single" && !engine_->experts.empty()) spec.expert = engine_->experts.front().name;
        ProbeOutcome outcome =
            probePrompt(t5, engine_->experts, spec, request.prompt.toStdString(), request.max_new_tokens);
        ProbeResult result;
        result.output = QString::fromStdString(outcome.output);
        result.trace = std::move(outcome.trace);
        Q_EMIT probed(result);
    } catch (const std::exception& e) {
        Q_EMIT failed(firstLine(e));
    }
    Q_EMIT idle();
}

}  // namespace phatgoose::ui
