#include "ui/experts/train_gate_dialog.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QRadioButton>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>

#include "ui/jobs/slurm_settings_box.h"

namespace phatgoose::ui {

TrainGateDialog::TrainGateDialog(QWidget* parent) : TrainingDialog(kTrainGateKind, parent) {
    setWindowTitle(tr("Train gates"));
    experts_ = new QListWidget(this);
    own_data_ = new QRadioButton(tr("Each expert's own training data"), this);
    own_data_->setToolTip(
        tr("The file named in the expert's training record, else the train split of its workspace task"));
    own_data_->setChecked(true);
    chosen_file_ = new QRadioButton(tr("This file:"), this);
    file_ = new QLineEdit(this);
    file_->setPlaceholderText(tr("a JSON Lines dataset"));
    auto* browse = new QPushButton(tr("Browse..."), this);
    browse->setAutoDefault(false);
    browse_ = browse;
    auto* file_row = new QHBoxLayout;
    file_row->addWidget(chosen_file_);
    file_row->addWidget(file_, 1);
    file_row->addWidget(browse);
    auto* data = new QVBoxLayout;
    data->addWidget(own_data_);
    data->addLayout(file_row);
    form()->insertRow(0, tr("Experts"), experts_);
    form()->insertRow(1, tr("Dataset"), data);
    run_on_ = new QComboBox(this);
    run_on_->addItems({tr("this machine"), tr("Slurm (a job array, one task per gate)")});
    run_on_->setToolTip(
        tr("Slurm: the gates train as array tasks; the Jobs tab follows them and brings the "
           "gates home"));
    slurm_box_ = new SlurmSettingsBox(this);
    form()->insertRow(2, tr("Run on"), run_on_);
    form()->insertRow(3, slurm_box_);
    const QSettings settings;
    run_on_->setCurrentIndex(settings.value("slurm/run_on", 0).toInt() == 1 ? 1 : 0);
    slurm_box_->setVisible(run_on_->currentIndex() == 1);
    connect(run_on_, &QComboBox::currentIndexChanged, this, [this](int index) {
        slurm_box_->setVisible(index == 1);
        QSettings().setValue("slurm/run_on", index);
    });

    connect(browse, &QPushButton::clicked, this, &TrainGateDialog::browse);
    connect(file_, &QLineEdit::textEdited, this, [this] { chosen_file_->setChecked(true); });
    resize(640, 720);
}

void TrainGateDialog::setExperts(const QList<ExpertRowView>& experts) {
    const QStringList checked = checkedExperts();
    experts_->clear();
    for (const ExpertRowView& e : experts) {
        QString label = e.name;
        if (e.has_gate_record)
            label += tr("   (gated, final loss %1)").arg(e.gate_loss, 0, 'f', 4);
        else if (!e.has_gate)
            label += tr("   (no gate yet)");
        auto* item = new QListWidgetItem(label, experts_);
        item->setData(Qt::UserRole, e.name);
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
        item->setCheckState(checked.contains(e.name) ? Qt::Checked : Qt::Unchecked);
    }
    // As tall as its rows (between 3 and 8), so a short library leaves no empty box.
    const int rows = std::clamp(int(experts.size()), 3, 8);
    experts_->setFixedHeight(rows * std::max(experts_->sizeHintForRow(0), 18) + 2 * experts_->frameWidth() +
                             4);
}

void TrainGateDialog::checkExperts(const QStringList& names) {
    for (int i = 0; i < experts_->count(); ++i) {
        QListWidgetItem* item = experts_->item(i);
        item->setCheckState(names.contains(item->data(Qt::UserRole).toString()) ? Qt::Checked
                                                                                : Qt::Unchecked);
    }
}

QStringList TrainGateDialog::checkedExperts() const {
    QStringList names;
    for (int i = 0; i < experts_->count(); ++i)
        if (experts_->item(i)->checkState() == Qt::Checked)
            names << experts_->item(i)->data(Qt::UserRole).toString();
    return names;
}

void TrainGateDialog::setDataset(const QString& jsonl) {
    file_->setText(jsonl);
    (jsonl.isEmpty() ? own_data_ : chosen_file_)->setChecked(true);
}

void TrainGateDialog::browse() {
    const QString file = QFileDialog::getOpenFileName(this, tr("Gate training data"), file_->text(),
                                                      tr("JSON Lines (*.jsonl);;All files (*)"));
    if (!file.isEmpty()) setDataset(file);
}

QStringList TrainGateDialog::sendRequest(QString* problem) {
    GateTrainingRequest r;
    r.experts = checkedExperts();
    if (r.experts.isEmpty()) {
        *problem = tr("Check at least one expert.");
        return {};
    }
    if (chosen_file_->isChecked()) {
        r.dataset = file_->text().trimmed();
        if (r.dataset.isEmpty()) {
            *problem = tr("Choose the JSON Lines file, or train each expert on its own data.");
            return {};
        }
    }
    r.options = options();
    r.save = save_;
    Q_EMIT trainingRequested(r);
    return r.experts;
}

void TrainGateDialog::setSlurm(const SlurmSettings& slurm) {
    slurm_box_->setSettings(slurm);
}

SlurmSettings TrainGateDialog::slurm() const {
    return slurm_box_->settings();
}

bool TrainGateDialog::sendElsewhere(QString* message) {
    // Without experts or a file the ordinary path says what is missing.
    if (run_on_->currentIndex() != 1 || checkedExperts().isEmpty() ||
        (chosen_file_->isChecked() && file_->text().trimmed().isEmpty()))
        return false;
    slurm_box_->remember();
    ClusterGatesRequest r;
    r.experts = checkedExperts();
    if (chosen_file_->isChecked()) r.dataset = file_->text().trimmed();
    r.options = options();
    r.slurm = slurm();
    Q_EMIT clusterRequested(r);
    *message = tr("Sent %n gate(s) to Slurm: the Jobs tab follows them and brings them home.", nullptr,
                  int(r.experts.size()));
    return true;
}

QString TrainGateDialog::finishedText(const TrainingOutcomeView& outcome) const {
    if (!save_) return tr("Finished (final loss %1); nothing was saved.").arg(outcome.final_loss, 0, 'f', 4);
    return tr("Trained and saved the gates of %1 (last final loss %2).")
        .arg(outcome.experts.join(", "))
        .arg(outcome.final_loss, 0, 'f', 4);
}

void TrainGateDialog::setInputsEnabled(bool enabled) {
    for (QWidget* w : std::initializer_list<QWidget*>{experts_, own_data_, chosen_file_, file_, browse_,
                                                      run_on_, slurm_box_})
        w->setEnabled(enabled);
}

}  // namespace phatgoose::ui
