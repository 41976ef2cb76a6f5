#pragma once
// What the Train gates and Train new expert dialogs share: a preset (the backend's trainingPresets of the
// run kind: Quick, Paper) and the settings over it (steps, learning rate, batch, accumulation, dropout, seed;
// editing one makes the preset "Custom"), Start / Cancel / Close, and a
// TrainingProgressPanel fed by the engine's progress signals. Non-modal: closing it while a run goes on only
// hides it, and the run carries on.
#include <QDialog>

#include "ui/engine_messages.h"

class QComboBox;
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
    QDoubleSpinBox* dropoutBox() const { return dropout_; }  // its minimum means "the model's rate"
    QComboBox* presetBox() const { return preset_; }
    // Fills the form with the named preset of this dialog's kind.
    void choosePreset(const QString& name);
    // What Start would train with.
    TrainingOptions options() const;
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
    // `kind`: the run kind this dialog starts ("train-gate", "train-expert"); the form starts at its first
    // preset.
    TrainingDialog(const QString& kind, QWidget* parent);
    // Subclasses insert their own rows above the optimizer settings.
    QFormLayout* form() const { return form_; }
    // Checks the form and emits the subclass's request. Returns the experts the run will train, in order;
    // empty, with `problem` set, when the form cannot make a request.
    virtual QStringList sendRequest(QString* problem) = 0;
    // The line shown when a run finished, e.g. what was saved where.
    virtual QString finishedText(const TrainingOutcomeView& outcome) const = 0;
    // Enables the subclass's own inputs (they are frozen while training).
    virtual void setInputsEnabled(bool enabled) = 0;
    // A run handed to someone else (Slurm) instead of trained here: true, with what to tell the user, when
    // the subclass sent it.
    virtual bool sendElsewhere(QString* /*message*/) { return false; }

private:
    void setTraining(bool training);
    void showOptions(const TrainingOptions& options);
    void markCustomIfEdited();
    QString kind_;
    TrainingOptions preset_options_;  // the chosen preset: what the form's fields do not set comes from it
    bool training_ = false;
    QFormLayout* form_;
    QSpinBox* steps_;
    QDoubleSpinBox* learning_rate_;
    QSpinBox* batch_;
    QSpinBox* accumulation_;
    QDoubleSpinBox* dropout_;
    QSpinBox* seed_;
    QComboBox* preset_;
    QPushButton* start_;
    QPushButton* cancel_;
    TrainingProgressPanel* panel_;
};

}  // namespace phatgoose::ui
