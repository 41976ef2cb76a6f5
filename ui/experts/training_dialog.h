#pragma once
// What the Train gates and Train new expert dialogs share: the optimizer settings (steps, learning rate,
// batch, accumulation, seed; their defaults are the backend's TrainingOptions), Start / Cancel / Close, and a
// TrainingProgressPanel fed by the engine's progress signals. Non-modal: closing it while a run goes on only
// hides it, and the run carries on.
#include <QDialog>

#include "ui/engine_messages.h"

class QDoubleSpinBox;
class QFormLayout;
class QPushButton;
class QSpinBox;

namespace phatgoose::ui {

class TrainingProgressPanel;

class TrainingDialog : public QDialog {
    Q_OBJECT
public:
    bool isTraining() const { return training_; }
    TrainingProgressPanel* panel() const { return panel_; }
    QSpinBox* stepsBox() const { return steps_; }
    QDoubleSpinBox* learningRateBox() const { return learning_rate_; }
    QSpinBox* batchBox() const { return batch_; }
    QSpinBox* accumulationBox() const { return accumulation_; }
    QSpinBox* seedBox() const { return seed_; }
    QPushButton* startButton() const { return start_; }
    QPushButton* cancelButton() const { return cancel_; }

public Q_SLOTS:
    void start();
    void cancel();
    // Both ignore runs of the other dialog's kind and anything arriving while this one is not training.
    void showProgress(const phatgoose::ui::TrainingProgressView& progress);
    void showOutcome(const phatgoose::ui::TrainingOutcomeView& outcome);

Q_SIGNALS:
    void cancelRequested();
    void progressShown(qint64 step);
    void trainingEnded(const phatgoose::ui::TrainingOutcomeView& outcome);

protected:
    // `kind`: the run kind this dialog starts ("train-gate", "train-expert"); the form starts at `defaults`.
    TrainingDialog(const QString& kind, const TrainingOptions& defaults, QWidget* parent);
    // The defaults with the form's values.
    TrainingOptions options() const;
    // Subclasses insert their own rows above the optimizer settings.
    QFormLayout* form() const { return form_; }
    // Checks the form and emits the subclass's request. Returns the experts the run will train, in order;
    // empty, with `problem` set, when the form cannot make a request.
    virtual QStringList sendRequest(QString* problem) = 0;
    // The line shown when a run finished, e.g. what was saved where.
    virtual QString finishedText(const TrainingOutcomeView& outcome) const = 0;
    // Enables the subclass's own inputs (they are frozen while training).
    virtual void setInputsEnabled(bool enabled) = 0;

private:
    void setTraining(bool training);
    QString kind_;
    TrainingOptions defaults_;
    bool training_ = false;
    QFormLayout* form_;
    QSpinBox* steps_;
    QDoubleSpinBox* learning_rate_;
    QSpinBox* batch_;
    QSpinBox* accumulation_;
    QSpinBox* seed_;
    QPushButton* start_;
    QPushButton* cancel_;
    TrainingProgressPanel* panel_;
};

}  // namespace phatgoose::ui
