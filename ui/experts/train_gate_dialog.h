#pragma once
// Experts > Train gates: trains the PHATGOOSE gate of one or more experts (docs/ARCHITECTURE.md, "PHATGOOSE
// gate training"), each on its own training data or on one chosen JSON Lines file, with a live loss curve.
// The engine saves each gate into its expert's folder and records the run in the workspace's results
// database.
#include <QList>

#include "ui/experts/training_dialog.h"

class QComboBox;
class QLineEdit;
class QListWidget;
class QRadioButton;

namespace phatgoose::ui {

class SlurmSettingsBox;

class TrainGateDialog : public TrainingDialog {
    Q_OBJECT
public:
    explicit TrainGateDialog(QWidget* parent = nullptr);

    // The experts to choose from; those checked before stay checked.
    void setExperts(const QList<phatgoose::ui::ExpertRowView>& experts);
    void checkExperts(const QStringList& names);  // and unchecks the others
    QStringList checkedExperts() const;
    // Empty: each expert's own training data.
    void setDataset(const QString& jsonl);
    // false: train and show, but save nothing (for measurements).
    void setSaving(bool save) { save_ = save; }
    QListWidget* expertList() const { return experts_; }
    // "Run on": this machine (index 0) or Slurm (1), with the Slurm fields remembered in the settings.
    QComboBox* runOnBox() const { return run_on_; }
    void setSlurm(const SlurmSettings& slurm);
    SlurmSettings slurm() const;

Q_SIGNALS:
    void trainingRequested(const phatgoose::ui::GateTrainingRequest& request);
    // Slurm was chosen: the experts and settings of a gate array (the shell adds the workspace's folders).
    void clusterRequested(const phatgoose::ui::ClusterGatesRequest& request);

protected:
    QStringList sendRequest(QString* problem) override;
    QString finishedText(const TrainingOutcomeView& outcome) const override;
    void setInputsEnabled(bool enabled) override;
    bool sendElsewhere(QString* message) override;

private:
    void browse();
    QListWidget* experts_;
    QRadioButton* own_data_;
    QRadioButton* chosen_file_;
    QLineEdit* file_;
    QWidget* browse_;
    QComboBox* run_on_;
    SlurmSettingsBox* slurm_box_;
    bool save_ = true;
};

}  // namespace phatgoose::ui
