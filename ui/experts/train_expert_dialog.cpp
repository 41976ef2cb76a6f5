#include "ui/experts/train_expert_dialog.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpressionValidator>
#include <QSpinBox>

namespace phatgoose::ui {

TrainExpertDialog::TrainExpertDialog(QWidget* parent)
    : TrainingDialog(kTrainExpertKind, parent) {
    setWindowTitle(tr("Train new expert"));
    name_ = new QLineEdit(this);
    name_->setPlaceholderText(tr("the expert's folder name in the library, e.g. my_task"));
    // A folder name: no separators, not "." or "..".
    name_->setValidator(new QRegularExpressionValidator(QRegularExpression("[^/\\\\]+"), name_));
    dataset_ = new QComboBox(this);
    dataset_->setEditable(true);
    dataset_->setInsertPolicy(QComboBox::NoInsert);
    dataset_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    dataset_->setMinimumContentsLength(40);
    auto* browse = new QPushButton(tr("Browse..."), this);
    browse->setAutoDefault(false);
    browse_ = browse;
    auto* data_row = new QHBoxLayout;
    data_row->addWidget(dataset_, 1);
    data_row->addWidget(browse);
    rank_ = new QSpinBox(this);
    rank_->setRange(1, 1024);
    rank_->setValue(int(LoraSettings{}.r));
    alpha_ = new QDoubleSpinBox(this);
    alpha_->setDecimals(3);
    alpha_->setRange(0.001, 10000.0);
    alpha_->setValue(LoraSettings{}.lora_alpha);
    alpha_->setToolTip(tr("The LoRA scale is alpha / rank"));
    form()->insertRow(0, tr("Name"), name_);
    form()->insertRow(1, tr("Training data"), data_row);
    form()->insertRow(2, tr("Rank"), rank_);
    form()->insertRow(3, tr("Alpha"), alpha_);
    connect(browse, &QPushButton::clicked, this, &TrainExpertDialog::browse);
    resize(640, 720);
}

void TrainExpertDialog::setDatasets(const QStringList& jsonl_files) {
    const QString current = dataset_->currentText();
    dataset_->clear();
    dataset_->addItems(jsonl_files);
    if (!current.isEmpty()) dataset_->setCurrentText(current);
}

void TrainExpertDialog::browse() {
    const QString file = QFileDialog::getOpenFileName(this, tr("Training data"), dataset_->currentText(),
                                                      tr("JSON Lines (*.jsonl);;All files (*)"));
    if (!file.isEmpty()) dataset_->setCurrentText(file);
}

QStringList TrainExpertDialog::sendRequest(QString* problem) {
    ExpertTrainingRequest r;
    r.name = name_->text().trimmed();
    r.dataset = dataset_->currentText().trimmed();
    if (r.name.isEmpty() || r.name == "." || r.name == "..") {
        *problem = tr("Give the new expert a name (its folder in the library).");
        return {};
    }
    if (existing_.contains(r.name)) {
        *problem = tr("The library already has an expert named '%1'; choose another name.").arg(r.name);
        return {};
    }
    if (r.dataset.isEmpty() || !QFileInfo(r.dataset).isFile()) {
        *problem = tr("Choose an existing JSON Lines file to train on.");
        return {};
    }
    r.rank = rank_->value();
    r.alpha = alpha_->value();
    r.options = options();
    Q_EMIT trainingRequested(r);
    return {r.name};
}

QString TrainExpertDialog::finishedText(const TrainingOutcomeView& outcome) const {
    return tr("Trained expert '%1' (final loss %2) and saved it into the library. Train its gate next "
              "(Experts > Train gates) so that PHATGOOSE can route to it.")
        .arg(outcome.experts.join(", "))
        .arg(outcome.final_loss, 0, 'f', 4);
}

void TrainExpertDialog::setInputsEnabled(bool enabled) {
    for (QWidget* w : std::initializer_list<QWidget*>{name_, dataset_, browse_, rank_, alpha_})
        w->setEnabled(enabled);
}

}  // namespace phatgoose::ui
