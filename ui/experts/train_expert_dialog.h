#pragma once
// Experts > Train new expert: trains a LoRA expert on a JSON Lines file (docs/ARCHITECTURE.md, "LoRA
// experts") with a live loss curve; the engine saves it into the open expert library under the given name,
// never over an existing expert.
#include "ui/experts/training_dialog.h"

class QComboBox;
class QLineEdit;

namespace phatgoose::ui {

class TrainExpertDialog : public TrainingDialog {
    Q_OBJECT
public:
    explicit TrainExpertDialog(QWidget* parent = nullptr);

    // Offered in the dataset list (e.g. the workspace's train splits); the first is preselected.
    void setDatasets(const QStringList& jsonl_files);
    // Names already in the library, refused before anything starts.
    void setExistingNames(const QStringList& names) { existing_ = names; }
    QLineEdit* nameEdit() const { return name_; }
    QComboBox* datasetBox() const { return dataset_; }
    QSpinBox* rankBox() const { return rank_; }
    QDoubleSpinBox* alphaBox() const { return alpha_; }

Q_SIGNALS:
    void trainingRequested(const phatgoose::ui::ExpertTrainingRequest& request);

protected:
    QStringList sendRequest(QString* problem) override;
    QString finishedText(const TrainingOutcomeView& outcome) const override;
    void setInputsEnabled(bool enabled) override;

private:
    void browse();
    QLineEdit* name_;
    QComboBox* dataset_;
    QWidget* browse_;
    QSpinBox* rank_;
    QDoubleSpinBox* alpha_;
    QStringList existing_;
};

}  // namespace phatgoose::ui
