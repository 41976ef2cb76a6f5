#pragma once
// Everything the views and the engine thread exchange, as plain data (Qt types and RoutingTrace; never
// LibTorch): requests go to EngineWorker's slots, answers come back through its signals. Views include this
// header, not engine_worker.h, so that only the shell (MainWindow) knows the worker.
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>

#include "eval/eval_settings.h"
#include "experts/lora_settings.h"
#include "routing/routing_methods.h"
#include "routing/routing_trace.h"
#include "training/training_options.h"

namespace phatgoose::ui {

// ---- The shell: workspaces and models ----

struct ModelSummaryView {
    QString folder, family, shape, vocabulary, parameters, dtype, lora_sites;
};

struct WorkspaceTaskView {
    QString name, role, description, example_prompt;  // role: "held-in" or "held-out"
    bool multiple_choice = false;
    QString train, valid, test;  // absolute paths; empty where the split does not exist
};

// What the GUI knows of an open workspace (store/workspace.h without the backend types).
struct WorkspaceView {
    QString root, name, model_dir, experts_dir, database, multitask_dir;
    QList<WorkspaceTaskView> tasks;
};

struct ProbeRequest {
    QString prompt;
    QString method = QString::fromStdString(RoutingSpec{}.method);
    int top_k = int(RoutingSpec{}.top_k);
    int max_new_tokens = 16;
    QString expert;       // single: the expert applied everywhere (empty: the library's first)
    QStringList exclude;  // what-if: route as if the library lacked these experts
    TokenPin pin;         // what-if: one expert alone on a span of tokens (token-wise methods)
};

struct ProbeResult {
    QString output;
    phatgoose::RoutingTrace trace;
    QStringList warnings;  // the prompt was cut to the input limit, experts were left out of routing
};

// The Compare view: one prompt under two configurations (a.prompt is used for both).
struct CompareRequest {
    ProbeRequest a, b;
};

struct CompareResult {
    ProbeResult a, b;
};

// ---- Results view: evaluations into the workspace's results database ----

// A cluster run's Slurm settings (the Train gates and New evaluation dialogs' "Run on: Slurm").
struct SlurmSettings {
    QString partition, time, mem, account, extra;  // empty: Slurm's default
    int cpus = 0;                                  // 0: Slurm's default
};

// The routing methods x datasets grid of `phatgoose eval`, written into the workspace's results database.
struct EvaluationRequest {
    QString database;     // the workspace's workbench.sqlite
    QStringList methods;  // labels as `phatgoose eval --methods` takes them: "phatgoose", "single:qa"
    int top_k = int(RoutingSpec{}.top_k);
    QStringList datasets;  // JSON Lines files
    int batch_size = int(EvalSettings{}.batch_size);
    int max_new_tokens = int(EvalSettings{}.max_new_tokens);
    bool on_slurm = false;  // one array task per method x dataset cell instead of here
    SlurmSettings slurm;
};

// ---- Experts view and training dialogs ----

// One row of the Experts table: ExpertLibrary::listing() plus the recorded loss curves.
// ---- Routing analysis view: routing statistics over datasets into the workspace's results database ----

struct RoutingAnalysisRequest {
    QString database;  // the workspace's workbench.sqlite
    QString method = QString::fromStdString(RoutingSpec{}.method);
    int top_k = int(RoutingSpec{}.top_k);
    QStringList datasets;  // JSON Lines files
    int batch_size = 8;
    QStringList exclude;  // experts routed without
};

struct ExpertRowView {
    QString name, task;
    qint64 rank = 0;
    double alpha = 0.0;
    QStringList targets;
    QString base_model;
    bool has_gate = false;
    bool has_gate_record = false;  // without one, gate_loss means nothing
    double gate_loss = 0.0;
    qint64 training_steps = 0;
    qint64 modules = 0;
    QString folder;
    QVector<double> expert_curve;  // expert training: one loss per update
    QVector<double> gate_curve;    // gate training: one loss per update
};

struct GateTrainingRequest {
    QStringList experts;  // trained one after the other, each on its own data unless `dataset` is set
    QString dataset;      // a JSON Lines file for every expert; empty: each expert's own training data
    TrainingOptions options = gateTrainingDefaults();
    // false: train and report, but write nothing (the gate, the database); for measurements.
    bool save = true;
};

struct ExpertTrainingRequest {
    QString name;     // the new expert's folder name in the library; an existing one is refused
    QString dataset;  // JSON Lines
    qint64 rank = LoraSettings{}.r;
    double alpha = LoraSettings{}.lora_alpha;
    TrainingOptions options;
};

// ---- Cluster runs (Slurm): the Train gates dialog's "Run on: Slurm" and the Jobs panel ----

struct ClusterGatesRequest {
    QString workspace_root, model_dir, experts_dir;  // the run folder goes under workspace_root/cluster
    QStringList experts;
    QString dataset;  // one file for every gate; empty: each expert's own training data
    TrainingOptions options;
    SlurmSettings slurm;
};

// New evaluation on Slurm: the grid and the workspace's folders (the run folder goes under
// workspace_root/cluster).
struct ClusterEvalRequest {
    QString workspace_root, model_dir, experts_dir;
    EvaluationRequest evaluation;
};

struct ClusterTaskView {
    QString name, state, log_tail;  // state: pending, running, done, failed, cancelled
};

struct ClusterRunView {
    QString dir, kind, job_id;
    QList<ClusterTaskView> tasks;
    qint64 collected = 0;  // tasks brought home
    QString error;         // the folder could not be read
};

// The run kinds of the training dialogs, as the results database records them (training_session.h).
inline const QString kTrainGateKind = QString::fromUtf8(kTrainGateRun);
inline const QString kTrainExpertKind = QString::fromUtf8(kTrainExpertRun);

struct TrainingProgressView {
    QString kind;  // kTrainGateKind or kTrainExpertKind, as in TrainingOutcomeView
    QString expert;
    qint64 step = 0, total = 0;
    double loss = 0.0, learning_rate = 0.0, tokens_per_s = 0.0, eta_s = 0.0;
};

struct TrainingOutcomeView {
    QString kind;             // kTrainGateKind or kTrainExpertKind
    QString status;           // "finished", "cancelled" or "failed"
    QString message;          // why it failed or was cancelled, for people
    QStringList experts;      // the experts whose training finished (and was saved)
    QList<qint64> runs;       // the results database's run ids, one per expert attempted; empty unsaved
    double final_loss = 0.0;  // the last finished expert's
};

// ---- Importing an expert library ----

struct LibraryImportRequest {
    QString source;  // an r-three best.pt, or a folder of PEFT adapter folders (safetensors or .bin)
    QString out;     // for a best.pt: the library folder to create
    bool bf16 = false;
};

struct LibraryImportProgressView {
    qint64 experts_done = 0, experts_total = 0;
    double gb_read = 0.0, gb_total = 0.0;
};

struct LibraryImportOutcomeView {
    QString status;  // "finished", "cancelled" or "failed"
    QString message;
    QString library;  // the library now open (finished only)
    qint64 experts = 0;
    QStringList warnings;
};

}  // namespace phatgoose::ui

Q_DECLARE_METATYPE(phatgoose::ui::RoutingAnalysisRequest)
Q_DECLARE_METATYPE(phatgoose::ui::WorkspaceView)
Q_DECLARE_METATYPE(phatgoose::ui::ModelSummaryView)
Q_DECLARE_METATYPE(phatgoose::ui::ProbeRequest)
Q_DECLARE_METATYPE(phatgoose::ui::ProbeResult)
Q_DECLARE_METATYPE(phatgoose::ui::CompareRequest)
Q_DECLARE_METATYPE(phatgoose::ui::CompareResult)
Q_DECLARE_METATYPE(phatgoose::ui::ExpertRowView)
Q_DECLARE_METATYPE(phatgoose::ui::GateTrainingRequest)
Q_DECLARE_METATYPE(phatgoose::ui::ExpertTrainingRequest)
Q_DECLARE_METATYPE(phatgoose::ui::TrainingProgressView)
Q_DECLARE_METATYPE(phatgoose::ui::TrainingOutcomeView)
Q_DECLARE_METATYPE(phatgoose::ui::EvaluationRequest)
Q_DECLARE_METATYPE(phatgoose::ui::LibraryImportRequest)
Q_DECLARE_METATYPE(phatgoose::ui::LibraryImportProgressView)
Q_DECLARE_METATYPE(phatgoose::ui::LibraryImportOutcomeView)
Q_DECLARE_METATYPE(phatgoose::ui::ClusterGatesRequest)
Q_DECLARE_METATYPE(phatgoose::ui::ClusterRunView)
Q_DECLARE_METATYPE(phatgoose::ui::ClusterEvalRequest)
