#include "ui/experts/training_dialog.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <limits>

#include "ui/experts/training_progress_panel.h"

namespace phatgoose::ui {

namespace {
const QString kCustom = QObject::tr("Custom");
}  // namespace

TrainingDialog::TrainingDialog(const QString& kind, QWidget* parent) : QDialog(parent), kind_(kind) {
    preset_ = new QComboBox(this);
    for (const TrainingPreset& p : trainingPresets(kind.toStdString()))
        preset_->addItem(QString::fromStdString(p.label), QString::fromStdString(p.name));
    preset_->setToolTip(tr("Start from a preset; editing a setting below makes it Custom"));
    steps_ = new QSpinBox(this);
    steps_->setRange(1, 10'000'000);
    learning_rate_ = new QDoubleSpinBox(this);
    learning_rate_->setDecimals(6);
    learning_rate_->setRange(1e-6, 10.0);
    learning_rate_->setSingleStep(1e-3);
    batch_ = new QSpinBox(this);
    batch_->setRange(1, 4096);
    batch_->setToolTip(tr("Examples per forward pass"));
    accumulation_ = new QSpinBox(this);
    accumulation_->setRange(1, 4096);
    accumulation_->setToolTip(
        tr("Forward passes per optimizer step: the effective batch is batch size x this"));
    dropout_ = new QDoubleSpinBox(this);
    dropout_->setDecimals(2);
    dropout_->setRange(-0.05, 0.9);
    dropout_->setSingleStep(0.05);
    dropout_->setSpecialValueText(tr("the model's (config.json)"));
    dropout_->setToolTip(tr("Dropout while training; validation and inference never drop"));
    seed_ = new QSpinBox(this);
    seed_->setRange(0, std::numeric_limits<int>::max());
    seed_->setToolTip(tr("Shuffling (and, for a new expert, initialisation) follow this seed"));

    form_ = new QFormLayout;
    form_->addRow(tr("Preset"), preset_);
    form_->addRow(tr("Steps"), steps_);
    form_->addRow(tr("Learning rate"), learning_rate_);
    form_->addRow(tr("Batch size"), batch_);
    form_->addRow(tr("Accumulation"), accumulation_);
    form_->addRow(tr("Dropout"), dropout_);
    form_->addRow(tr("Seed"), seed_);
    choosePreset(preset_->itemData(0).toString());
    connect(preset_, &QComboBox::currentIndexChanged, this, [this](int index) {
        const QString name = preset_->itemData(index).toString();
        if (!name.isEmpty()) choosePreset(name);
    });
    for (QSpinBox* box : {steps_, batch_, accumulation_, seed_})
        connect(box, &QSpinBox::valueChanged, this, &TrainingDialog::markCustomIfEdited);
    for (QDoubleSpinBox* box : {learning_rate_, dropout_})
        connect(box, &QDoubleSpinBox::valueChanged, this, &TrainingDialog::markCustomIfEdited);

    start_ = new QPushButton(tr("Start"), this);
    cancel_ = new QPushButton(tr("Cancel training"), this);
    auto* close = new QPushButton(tr("Close"), this);
    for (QPushButton* b : {start_, cancel_, close}) b->setAutoDefault(false);  // Enter starts nothing
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(start_);
    buttons->addWidget(cancel_);
    buttons->addStretch(1);
    buttons->addWidget(close);

    panel_ = new TrainingProgressPanel(this);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form_);
    layout->addLayout(buttons);
    layout->addWidget(panel_, 1);

    connect(start_, &QPushButton::clicked, this, &TrainingDialog::start);
    connect(cancel_, &QPushButton::clicked, this, &TrainingDialog::cancel);
    connect(close, &QPushButton::clicked, this, &QDialog::hide);
    cancel_->setEnabled(false);  // not setTraining(): the subclass's inputs do not exist yet
}

void TrainingDialog::choosePreset(const QString& name) {
    preset_options_ = trainingPreset(kind_.toStdString(), name.toStdString()).options;
    {
        const QSignalBlocker quiet(preset_);
        const int custom = preset_->findText(kCustom);
        if (custom >= 0) preset_->removeItem(custom);
        preset_->setCurrentIndex(preset_->findData(name));
    }
    showOptions(preset_options_);
}

void TrainingDialog::showOptions(const TrainingOptions& o) {
    const QSignalBlocker a(steps_), b(learning_rate_), c(batch_), d(accumulation_), e(dropout_), f(seed_);
    steps_->setValue(int(o.steps));
    learning_rate_->setValue(o.learning_rate);
    batch_->setValue(int(o.batch_size));
    accumulation_->setValue(int(o.accumulation_steps));
    dropout_->setValue(o.dropout < 0 ? dropout_->minimum() : o.dropout);
    seed_->setValue(int(o.seed));
}

// A preset that no longer describes the form is shown as "Custom"; the settings the form has no field for
// still come from it.
void TrainingDialog::markCustomIfEdited() {
    const TrainingOptions o = options();
    const TrainingOptions& p = preset_options_;
    const bool same = o.steps == p.steps && o.learning_rate == p.learning_rate &&
                      o.batch_size == p.batch_size && o.accumulation_steps == p.accumulation_steps &&
                      o.dropout == p.dropout && o.seed == p.seed;
    if (same || preset_->currentText() == kCustom) return;
    const QSignalBlocker quiet(preset_);
    preset_->addItem(kCustom);
    preset_->setCurrentIndex(preset_->count() - 1);
}

TrainingOptions TrainingDialog::options() const {
    TrainingOptions o = preset_options_;
    o.steps = steps_->value();
    o.learning_rate = learning_rate_->value();
    o.batch_size = batch_->value();
    o.accumulation_steps = accumulation_->value();
    o.dropout = dropout_->value() <= dropout_->minimum() ? -1.0 : dropout_->value();
    o.seed = uint64_t(seed_->value());
    return o;
}

void TrainingDialog::setTraining(bool training) {
    training_ = training;
    start_->setEnabled(!training);
    cancel_->setEnabled(training);
    for (QWidget* w : std::initializer_list<QWidget*>{preset_, steps_, learning_rate_, batch_, accumulation_,
                                                      dropout_, seed_})
        w->setEnabled(!training);
    setInputsEnabled(!training);
}

void TrainingDialog::start() {
    if (training_) return;
    QString problem;
    if (QString message; sendElsewhere(&message)) {
        panel_->showMessage(message);
        return;
    }
    // Frozen before the request leaves, so the settings shown are the ones it carries.
    setTraining(true);
    const QStringList experts = sendRequest(&problem);
    if (experts.isEmpty()) {
        setTraining(false);
        panel_->showMessage(problem, true);
        return;
    }
    panel_->begin(experts, steps_->value());
}

void TrainingDialog::cancel() {
    if (!training_) return;
    panel_->showMessage(tr("Cancelling at the next step ..."));
    Q_EMIT cancelRequested();
}

void TrainingDialog::showProgress(const TrainingProgressView& progress) {
    if (!training_ || progress.kind != kind_) return;
    panel_->showProgress(progress);
    Q_EMIT progressShown(progress.step);
}

void TrainingDialog::showOutcome(const TrainingOutcomeView& outcome) {
    if (!training_ || outcome.kind != kind_) return;
    setTraining(false);
    if (outcome.status == "finished") {
        panel_->showMessage(finishedText(outcome));
    } else if (outcome.status == "cancelled") {
        QString text =
            tr("Cancelled (%1); nothing was saved for the run that was stopped.").arg(outcome.message);
        if (!outcome.experts.isEmpty())
            text += tr(" Finished and saved before it: %1.").arg(outcome.experts.join(", "));
        panel_->showMessage(text);
    } else {
        panel_->showMessage(tr("Training failed: %1").arg(outcome.message), true);
        // Not exec(): a nested event loop would hold up the engine's queued signals.
        auto* box = new QMessageBox(QMessageBox::Warning, windowTitle(),
                                    tr("Training failed.\n\n%1").arg(outcome.message), QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
    }
    Q_EMIT trainingEnded(outcome);
}

}  // namespace phatgoose::ui
