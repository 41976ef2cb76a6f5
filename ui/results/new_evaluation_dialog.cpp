#include "ui/results/new_evaluation_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSet>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>

#include "routing/routing_methods.h"  // the dialog offers exactly the engine's table of methods
#include "ui/jobs/slurm_settings_box.h"

namespace phatgoose::ui {

namespace {

constexpr int kPathRole = Qt::UserRole;

const RoutingMethod& methodNamed(const QString& name) {
    return routingMethod(name.toStdString());
}

QString methodHint(const RoutingMethod& m) {
    QString hint = QString::fromStdString(m.label + ": " + m.description);
    if (m.names_an_expert) hint += QObject::tr(" (choose it below)");
    if (m.needs_examples) hint += QObject::tr(" (needs the experts' training data)");
    return hint;
}

}  // namespace

NewEvaluationDialog::NewEvaluationDialog(const WorkspaceView& workspace, const QStringList& experts,
                                         QWidget* parent)
    : QDialog(parent), database_(workspace.database) {
    setWindowTitle(tr("New evaluation"));
    auto* columns = new QHBoxLayout;
    columns->addWidget(buildMethods(experts));
    columns->addWidget(buildDatasets(workspace));
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    ok_ = buttons->button(QDialogButtonBox::Ok);
    ok_->setText(tr("Evaluate"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    problem_ = new QLabel(this);
    problem_->setStyleSheet(QStringLiteral("color: #a33;"));
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(columns, 1);
    layout->addWidget(buildSettings(int(experts.size())));
    layout->addWidget(problem_);
    layout->addWidget(buttons);
    updateAcceptable();
}

QWidget* NewEvaluationDialog::buildMethods(const QStringList& experts) {
    auto* box = new QGroupBox(tr("Routing methods"), this);
    methods_ = new QListWidget(box);
    for (const RoutingMethod& m : routingMethods()) {
        auto* item = new QListWidgetItem(QString::fromStdString(m.name), methods_);
        item->setToolTip(methodHint(m));
        const bool possible = !m.needs_experts || !experts.isEmpty();
        item->setFlags(possible ? Qt::ItemIsUserCheckable | Qt::ItemIsEnabled : Qt::ItemIsUserCheckable);
        // Checked at first: the base model and the default method, the comparison every evaluation wants.
        const bool first_choice = !m.needs_experts || m.name == defaultRoutingMethod();
        item->setCheckState(possible && first_choice ? Qt::Checked : Qt::Unchecked);
    }
    single_expert_ = new QComboBox(box);
    single_expert_->addItems(experts);
    auto* layout = new QFormLayout(box);
    layout->addRow(methods_);
    layout->addRow(tr("Expert for single"), single_expert_);
    connect(methods_, &QListWidget::itemChanged, this, &NewEvaluationDialog::updateAcceptable);
    return box;
}

QWidget* NewEvaluationDialog::buildDatasets(const WorkspaceView& workspace) {
    auto* box = new QGroupBox(tr("Datasets (test splits)"), this);
    datasets_ = new QListWidget(box);
    for (const WorkspaceTaskView& t : workspace.tasks) {
        if (t.test.isEmpty()) continue;
        auto* item = new QListWidgetItem(QStringLiteral("%1  (%2)").arg(t.name, t.role), datasets_);
        item->setData(kPathRole, t.test);
        item->setToolTip(t.test);
        item->setFlags(Qt::ItemIsUserCheckable | Qt::ItemIsEnabled);
        item->setCheckState(Qt::Checked);
    }
    auto* add = new QPushButton(tr("Add JSONL file..."), box);
    connect(add, &QPushButton::clicked, this, &NewEvaluationDialog::chooseFiles);
    auto* layout = new QVBoxLayout(box);
    layout->addWidget(datasets_, 1);
    layout->addWidget(add, 0, Qt::AlignLeft);
    connect(datasets_, &QListWidget::itemChanged, this, &NewEvaluationDialog::updateAcceptable);
    return box;
}

QWidget* NewEvaluationDialog::buildSettings(int expert_count) {
    auto* box = new QWidget(this);
    top_k_ = new QSpinBox(box);
    top_k_->setRange(1, std::max(1, expert_count));  // the routers refuse a k above the library size
    top_k_->setValue(std::min(2, top_k_->maximum()));
    top_k_->setToolTip(tr("Experts kept per token and module (phatgoose, arrow, average-activation)"));
    batch_ = new QSpinBox(box);
    batch_->setRange(1, 1024);
    batch_->setValue(16);
    max_new_tokens_ = new QSpinBox(box);
    max_new_tokens_->setRange(1, 512);
    max_new_tokens_->setValue(32);
    max_new_tokens_->setToolTip(tr("Generation length limit for exact-match examples"));
    run_on_ = new QComboBox(box);
    run_on_->addItems({tr("this machine"), tr("Slurm (a job array, one task per method and dataset)")});
    slurm_box_ = new SlurmSettingsBox(box);
    auto* layout = new QFormLayout(box);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addRow(tr("Top-k"), top_k_);
    layout->addRow(tr("Batch size"), batch_);
    layout->addRow(tr("Max new tokens"), max_new_tokens_);
    layout->addRow(tr("Run on"), run_on_);
    layout->addRow(slurm_box_);
    run_on_->setCurrentIndex(QSettings().value("slurm/evaluate_on", 0).toInt() == 1 ? 1 : 0);
    slurm_box_->setVisible(run_on_->currentIndex() == 1);
    connect(run_on_, &QComboBox::currentIndexChanged, this, [this](int index) {
        slurm_box_->setVisible(index == 1);
        QSettings().setValue("slurm/evaluate_on", index);
    });
    return box;
}

void NewEvaluationDialog::chooseFiles() {
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Add datasets"), QString(),
                                                            tr("JSON Lines (*.jsonl);;All files (*)"));
    for (const QString& f : files) addDatasetFile(f);
}

void NewEvaluationDialog::addDatasetFile(const QString& file) {
    const QString path = QFileInfo(file).absoluteFilePath();
    for (int i = 0; i < datasets_->count(); ++i)
        if (datasets_->item(i)->data(kPathRole).toString() == path) {
            datasets_->item(i)->setCheckState(Qt::Checked);
            return;
        }
    auto* item = new QListWidgetItem(QStringLiteral("%1  (file)").arg(QFileInfo(path).completeBaseName()));
    item->setData(kPathRole, path);
    item->setToolTip(path);
    item->setFlags(Qt::ItemIsUserCheckable | Qt::ItemIsEnabled);
    item->setCheckState(Qt::Checked);
    datasets_->addItem(item);  // itemChanged does not fire for a new item
    updateAcceptable();
}

void NewEvaluationDialog::setMethodChecked(const QString& method, bool checked) {
    const auto found = methods_->findItems(method, Qt::MatchExactly);
    if (!found.isEmpty()) found.front()->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
}

QListWidgetItem* NewEvaluationDialog::datasetItem(const QString& name) const {
    for (int i = 0; i < datasets_->count(); ++i) {
        QListWidgetItem* item = datasets_->item(i);
        if (QFileInfo(item->data(kPathRole).toString()).completeBaseName() == name) return item;
    }
    return nullptr;
}

void NewEvaluationDialog::setDatasetChecked(const QString& name, bool checked) {
    if (QListWidgetItem* item = datasetItem(name)) item->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
}

EvaluationRequest NewEvaluationDialog::request() const {
    EvaluationRequest r;
    r.database = database_;
    for (int i = 0; i < methods_->count(); ++i) {
        const QListWidgetItem* item = methods_->item(i);
        if (item->checkState() != Qt::Checked) continue;
        r.methods << (methodNamed(item->text()).names_an_expert
                          ? item->text() + ":" + single_expert_->currentText()
                          : item->text());
    }
    for (int i = 0; i < datasets_->count(); ++i)
        if (datasets_->item(i)->checkState() == Qt::Checked)
            r.datasets << datasets_->item(i)->data(kPathRole).toString();
    r.top_k = top_k_->value();
    r.batch_size = batch_->value();
    r.max_new_tokens = max_new_tokens_->value();
    r.on_slurm = run_on_->currentIndex() == 1;
    if (r.on_slurm) {
        r.slurm = slurm_box_->settings();
        slurm_box_->remember();
    }
    return r;
}

QString NewEvaluationDialog::problem() const {
    const EvaluationRequest r = request();
    if (r.methods.isEmpty()) return tr("Choose at least one routing method.");
    if (r.methods.contains(QStringLiteral("single:"))) return tr("Choose the expert for 'single'.");
    if (r.datasets.isEmpty()) return tr("Choose at least one dataset.");
    // Results are kept by dataset name (the file stem), so two files must not share one.
    QSet<QString> names;
    for (const QString& d : r.datasets) {
        const QString name = QFileInfo(d).completeBaseName();
        if (names.contains(name)) return tr("Two chosen datasets are both named '%1'.").arg(name);
        names.insert(name);
    }
    return {};
}

void NewEvaluationDialog::updateAcceptable() {
    if (!ok_ || !top_k_) return;  // still being built
    bool any_k = false;
    for (int i = 0; i < methods_->count(); ++i)
        any_k |= methods_->item(i)->checkState() == Qt::Checked &&
                 methodNamed(methods_->item(i)->text()).uses_top_k;
    top_k_->setEnabled(any_k);
    const QString why = problem();
    problem_->setText(why);
    ok_->setEnabled(why.isEmpty());
}

}  // namespace phatgoose::ui
