#pragma once
// "New evaluation...": which routing methods (every one the engine knows; `single` with the expert to use),
// k, which datasets (the workspace's test splits, plus any JSON Lines file), batch size and generation
// length. The result is an EvaluationRequest for the engine thread.
#include <QDialog>

#include "ui/engine_messages.h"

class QComboBox;
class QGroupBox;
class QLabel;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class QSpinBox;

namespace phatgoose::ui {

class SlurmSettingsBox;

class NewEvaluationDialog : public QDialog {
    Q_OBJECT
public:
    NewEvaluationDialog(const phatgoose::ui::WorkspaceView& workspace, const QStringList& experts,
                        QWidget* parent = nullptr);

    // The database is the workspace's; what the user chose fills the rest.
    EvaluationRequest request() const;

    void setMethodChecked(const QString& method, bool checked);
    // `name` is a workspace task, or the file name stem of an added file.
    void setDatasetChecked(const QString& name, bool checked);
    void addDatasetFile(const QString& file);
    QListWidget* methodList() const { return methods_; }
    QListWidget* datasetList() const { return datasets_; }
    QComboBox* singleExpert() const { return single_expert_; }
    QSpinBox* topK() const { return top_k_; }
    QSpinBox* batchSize() const { return batch_; }
    QSpinBox* maxNewTokens() const { return max_new_tokens_; }
    QComboBox* runOnBox() const { return run_on_; }  // 0: this machine, 1: Slurm
    QPushButton* okButton() const { return ok_; }
    QString problem() const;  // why OK is disabled; empty when the request can run

private:
    QWidget* buildMethods(const QStringList& experts);
    QWidget* buildDatasets(const phatgoose::ui::WorkspaceView& workspace);
    QWidget* buildSettings(int expert_count);
    void chooseFiles();
    void updateAcceptable();
    QListWidgetItem* datasetItem(const QString& name) const;

    QString database_;
    QListWidget* methods_ = nullptr;
    QComboBox* single_expert_ = nullptr;
    QListWidget* datasets_ = nullptr;
    QSpinBox* top_k_ = nullptr;
    QSpinBox* batch_ = nullptr;
    QSpinBox* max_new_tokens_ = nullptr;
    QComboBox* run_on_ = nullptr;
    SlurmSettingsBox* slurm_box_ = nullptr;
    QLabel* problem_ = nullptr;
    QPushButton* ok_ = nullptr;
};

}  // namespace phatgoose::ui
