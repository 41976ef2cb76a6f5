#pragma once
// What the engine thread and the Experts view / training dialogs exchange, as plain Qt data (no backend
// types): the expert library's listing with its loss curves, training requests, per-step progress and
// the outcome of a run.
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>

namespace phatgoose::ui {

// One row of the Experts table: ExpertLibrary::listing() plus the recorded loss curves.
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
    int steps = 100;
    double learning_rate = 5e-3;
    int batch_size = 8;
    quint64 seed = 0;
    // false: train and report, but write nothing (the gate, the database); for measurements.
    bool save = true;
};

struct ExpertTrainingRequest {
    QString name;     // the new expert's folder name in the library; an existing one is refused
    QString dataset;  // JSON Lines
    int rank = 16;
    double alpha = 1.0;
    int steps = 1000;
    double learning_rate = 5e-3;
    int batch_size = 8;
    quint64 seed = 0;
};

struct TrainingProgressView {
    QString kind;  // "train-gate" or "train-expert", as in TrainingOutcomeView
    QString expert;
    qint64 step = 0, total = 0;
    double loss = 0.0, learning_rate = 0.0, tokens_per_s = 0.0, eta_s = 0.0;
};

struct TrainingOutcomeView {
    QString kind;             // "train-gate" or "train-expert"
    QString status;           // "finished", "cancelled" or "failed"
    QString message;          // why it failed or was cancelled, for people
    QStringList experts;      // the experts whose training finished (and was saved)
    QList<qint64> runs;       // the results database's run ids, one per expert attempted; empty unsaved
    double final_loss = 0.0;  // the last finished expert's
};

}  // namespace phatgoose::ui

Q_DECLARE_METATYPE(phatgoose::ui::ExpertRowView)
Q_DECLARE_METATYPE(phatgoose::ui::GateTrainingRequest)
Q_DECLARE_METATYPE(phatgoose::ui::ExpertTrainingRequest)
Q_DECLARE_METATYPE(phatgoose::ui::TrainingProgressView)
Q_DECLARE_METATYPE(phatgoose::ui::TrainingOutcomeView)
