#include "ui/results/results_view.h"

#include "routing/routing_methods.h"

#include <QAction>
#include <QComboBox>
#include <QDateTime>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "error.h"
#include "store/results_store.h"
#include "ui/plot/table_export.h"
#include "ui/results/accuracy_chart.h"
#include "ui/results/new_evaluation_dialog.h"
#include "ui/results/predictions_table_model.h"
#include "ui/results/results_table_model.h"

namespace phatgoose::ui {

namespace {

QString q(const std::string& s) {
    return QString::fromStdString(s);
}

QString firstLine(const std::exception& e) {
    return QString::fromStdString(e.what()).section(QLatin1Char('\n'), 0, 0);
}

// "Run 3 · 2024-05-01 12:00 · finished · base, phatgoose (k=2)"
QString runLabel(const RunRecord& run) {
    const QDateTime started = QDateTime::fromString(q(run.started_at), Qt::ISODateWithMs).toLocalTime();
    QStringList methods;
    const QJsonObject settings = QJsonDocument::fromJson(QByteArray::fromStdString(run.settings)).object();
    const int k = settings.value(QStringLiteral("top_k")).toInt();
    for (const QJsonValue& m : settings.value(QStringLiteral("methods")).toArray()) methods << m.toString();
    QString label = ResultsView::tr("Run %1 · %2 · %3")
                        .arg(run.id)
                        .arg(started.toString("yyyy-MM-dd HH:mm"), q(run.status));
    if (!methods.isEmpty()) label += QStringLiteral(" · ") + methods.join(QStringLiteral(", "));
    if (k > 0) label += ResultsView::tr(" (k=%1)").arg(k);
    return label;
}

QTableView* newTable(QWidget* parent) {
    auto* view = new QTableView(parent);
    view->setSelectionBehavior(QAbstractItemView::SelectRows);
    view->setSelectionMode(QAbstractItemView::SingleSelection);
    view->setAlternatingRowColors(true);
    view->setWordWrap(false);
    view->verticalHeader()->setVisible(false);
    view->verticalHeader()->setDefaultSectionSize(view->fontMetrics().height() + 6);
    // No sort until the user asks: rows start in the order the run computed them.
    view->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder);
    view->setSortingEnabled(true);
    view->setContextMenuPolicy(Qt::ActionsContextMenu);
    return view;
}

QToolButton* buttonFor(QAction* action, QWidget* parent) {
    auto* button = new QToolButton(parent);
    button->setDefaultAction(action);
    button->setToolButtonStyle(Qt::ToolButtonTextOnly);
    return button;
}

// Sets a filter combo's choices, keeping the current one when it is still among them.
void resetChoices(QComboBox* combo, const QString& all, const QStringList& choices) {
    const QString current = combo->currentData().toString();
    combo->blockSignals(true);
    combo->clear();
    combo->addItem(all, QString());
    for (const QString& c : choices) combo->addItem(c, c);
    const int keep = combo->findData(current);
    combo->setCurrentIndex(keep >= 0 ? keep : 0);
    combo->blockSignals(false);
}

}  // namespace

ResultsView::ResultsView(QWidget* parent) : QWidget(parent) {
    buildActions();
    metrics_ = new ResultsTableModel(this);
    metrics_filter_ = new ResultsFilter(this);
    metrics_filter_->setSourceModel(metrics_);
    metrics_view_ = newTable(this);
    metrics_view_->setModel(metrics_filter_);
    metrics_view_->addAction(export_table_);
    metrics_view_->horizontalHeader()->setStretchLastSection(true);
    chart_ = new AccuracyChart(this);
    chart_->setContextMenuPolicy(Qt::ActionsContextMenu);
    chart_->addAction(save_chart_);
    error_ = new QLabel(this);
    error_->setStyleSheet(QStringLiteral("QLabel { color: #a40000; font-weight: bold; }"));
    error_->setWordWrap(true);
    error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    error_->hide();
    status_ =
        new QLabel(tr("Open a workspace (File > Open workspace...) to see its evaluation results."), this);
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* tables = new QSplitter(Qt::Horizontal, this);
    tables->addWidget(metrics_view_);
    tables->addWidget(buildPredictions());
    tables->setStretchFactor(0, 1);
    tables->setStretchFactor(1, 1);
    tables->setSizes({560, 740});  // pixels until shown: the metrics table needs its seven columns readable
    auto* main = new QSplitter(Qt::Vertical, this);
    main->addWidget(chart_);
    main->addWidget(tables);
    main->setStretchFactor(0, 3);
    main->setStretchFactor(1, 2);
    main->setSizes({600, 400});  // proportions until the splitter first has a size of its own

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(buildControls());
    layout->addWidget(buildProgress());
    layout->addWidget(error_);
    layout->addWidget(status_);
    layout->addWidget(main, 1);

    connect(metrics_view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current) { showPredictionsOf(current); });
    connect(metrics_view_, &QTableView::doubleClicked, this, [this](const QModelIndex& index) {
        showPredictionsOf(index);
        predictions_view_->setFocus();
    });
}

ResultsView::~ResultsView() = default;

void ResultsView::buildActions() {
    new_evaluation_ = new QAction(tr("&New evaluation..."), this);
    new_evaluation_->setToolTip(tr("Evaluate routing methods on datasets into this workspace's database"));
    new_evaluation_->setEnabled(false);
    connect(new_evaluation_, &QAction::triggered, this, &ResultsView::newEvaluation);
    export_table_ = new QAction(tr("Export &table as CSV..."), this);
    connect(export_table_, &QAction::triggered, this, [this] {
        exportWithDialog(tr("Export results table"), tr("CSV (*.csv)"),
                         [this](const QString& f) { exportMetricsCsv(f); });
    });
    export_predictions_ = new QAction(tr("Export &predictions as CSV..."), this);
    connect(export_predictions_, &QAction::triggered, this, [this] {
        exportWithDialog(tr("Export predictions"), tr("CSV (*.csv)"),
                         [this](const QString& f) { exportPredictionsCsv(f); });
    });
    save_chart_ = new QAction(tr("Save &chart as PNG or PDF..."), this);
    connect(save_chart_, &QAction::triggered, this, [this] {
        exportWithDialog(tr("Save chart"), tr("PNG image (*.png);;PDF document (*.pdf)"),
                         [this](const QString& f) { saveChart(f); });
    });
}

QWidget* ResultsView::buildControls() {
    auto* box = new QWidget(this);
    run_ = new QComboBox(box);
    // Run labels list the methods and can be long: the popup shows them whole, the box a fixed width.
    run_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    run_->setMinimumContentsLength(42);
    text_ = new QLineEdit(box);
    text_->setPlaceholderText(tr("Filter rows..."));
    text_->setClearButtonEnabled(true);
    method_ = new QComboBox(box);
    dataset_ = new QComboBox(box);
    resetChoices(method_, tr("All methods"), {});
    resetChoices(dataset_, tr("All datasets"), {});

    auto* layout = new QHBoxLayout(box);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(new QLabel(tr("Run"), box));
    layout->addWidget(run_);
    layout->addWidget(text_, 1);
    layout->addWidget(method_);
    layout->addWidget(dataset_);
    layout->addWidget(buttonFor(new_evaluation_, box));
    layout->addWidget(buttonFor(export_table_, box));
    layout->addWidget(buttonFor(save_chart_, box));

    connect(run_, &QComboBox::currentIndexChanged, this, [this] { showSelectedRun(); });
    connect(text_, &QLineEdit::textChanged, metrics_filter_, &ResultsFilter::setText);
    connect(method_, &QComboBox::currentIndexChanged, this,
            [this] { metrics_filter_->setMethod(method_->currentData().toString()); });
    connect(dataset_, &QComboBox::currentIndexChanged, this,
            [this] { metrics_filter_->setDataset(dataset_->currentData().toString()); });
    return box;
}

QWidget* ResultsView::buildProgress() {
    progress_row_ = new QWidget(this);
    progress_label_ = new QLabel(progress_row_);
    progress_ = new QProgressBar(progress_row_);
    progress_->setFormat(tr("%v of %m examples"));
    cancel_ = new QPushButton(tr("Cancel"), progress_row_);
    auto* layout = new QHBoxLayout(progress_row_);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(progress_label_);
    layout->addWidget(progress_, 1);
    layout->addWidget(cancel_);
    connect(cancel_, &QPushButton::clicked, this, [this] {
        cancel_->setEnabled(false);
        progress_label_->setText(tr("Cancelling after the current batch..."));
        Q_EMIT cancelRequested();
    });
    progress_row_->hide();
    return progress_row_;
}

// Baselines such as the multitask model are not a routing of the open library: the probe cannot run them.
bool ResultsView::probeable() const {
    return findRoutingMethod(shown_method_.section(':', 0, 0).toStdString()) != nullptr;
}

bool ResultsView::analysable() const {
    const RoutingMethod* m = findRoutingMethod(shown_method_.toStdString());
    return m && (m->uses_top_k || m->id == RoutingMethodId::Retrieval);
}

// The dataset's file and the run's exclusions come from the run's recorded settings (`phatgoose eval` and
// the workbench both write them).
void ResultsView::requestRoutingAnalysis() {
    if (!store_ || !analysable()) return;
    try {
        const auto run = store_->run(shown_run_);
        const auto settings = nlohmann::json::parse(run ? run->settings : std::string("{}"), nullptr, false);
        RoutingAnalysisRequest request{.database = workspace_.database,
                                       .method = shown_method_,
                                       .top_k = shown_top_k_ > 0 ? shown_top_k_ : 1,
                                       .datasets = {},
                                       .batch_size = 8,
                                       .exclude = {}};
        if (!settings.is_discarded()) {
            for (const auto& d : settings.value("datasets", nlohmann::json::array()))
                if (d.value("name", std::string()) == shown_dataset_.toStdString())
                    request.datasets << QString::fromStdString(d.value("path", std::string()));
            for (const auto& name : settings.value("exclude", std::vector<std::string>()))
                request.exclude << QString::fromStdString(name);
        }
        if (request.datasets.isEmpty() || !QFileInfo::exists(request.datasets.front()))
            throw Error("run " + std::to_string(shown_run_) + " does not record where dataset '" +
                        shown_dataset_.toStdString() + "' is, or the file is gone");
        Q_EMIT analyseRouting(request);
    } catch (const std::exception& e) {
        setStatus(tr("Cannot analyse routing: %1").arg(firstLine(e)));
    }
}

QWidget* ResultsView::buildPredictions() {
    auto* box = new QWidget(this);
    predictions_ = new PredictionsTableModel(this);
    predictions_filter_ = new PredictionsFilter(this);
    predictions_filter_->setSourceModel(predictions_);
    predictions_view_ = newTable(box);
    predictions_view_->setModel(predictions_filter_);
    predictions_view_->addAction(export_predictions_);
    predictions_view_->horizontalHeader()->setSectionResizeMode(PredictionsTableModel::Input,
                                                                QHeaderView::Stretch);
    predictions_caption_ = new QLabel(tr("Select a result row to see its predictions."), box);
    predictions_caption_->setWordWrap(true);
    outcome_ = new QComboBox(box);
    outcome_->addItem(tr("All examples"), int(PredictionsFilter::Outcome::All));
    outcome_->addItem(tr("Correct only"), int(PredictionsFilter::Outcome::Correct));
    outcome_->addItem(tr("Incorrect only"), int(PredictionsFilter::Outcome::Incorrect));
    connect(outcome_, &QComboBox::currentIndexChanged, this, [this] {
        predictions_filter_->setOutcome(PredictionsFilter::Outcome(outcome_->currentData().toInt()));
    });
    auto* top = new QHBoxLayout;
    top->addWidget(predictions_caption_, 1);
    top->addWidget(outcome_);
    open_in_probe_ = new QAction(tr("Open in probe"), this);
    open_in_probe_->setToolTip(
        tr("Run the selected example's input in the Prompt probe with this result's method and k (routing "
           "methods only; baselines such as multitask are other models)"));
    open_in_probe_->setEnabled(false);
    connect(
        predictions_view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
        [this](const QModelIndex& current) { open_in_probe_->setEnabled(current.isValid() && probeable()); });
    connect(open_in_probe_, &QAction::triggered, this, [this] {
        const QModelIndex current = predictions_view_->currentIndex();
        if (!current.isValid()) return;
        const PredictionRow& row = predictions_->row(predictions_filter_->mapToSource(current).row());
        ProbeRequest request;
        request.prompt = row.input;
        // "single:qa" is the method single with the expert qa, as `phatgoose eval --methods` spells it.
        request.method = shown_method_.section(':', 0, 0);
        request.expert = shown_method_.section(':', 1);
        if (shown_top_k_ > 0) request.top_k = shown_top_k_;
        Q_EMIT openInProbe(request);
    });
    analyse_routing_ = new QAction(tr("Analyse routing"), this);
    analyse_routing_->setToolTip(
        tr("Which experts this dataset routes to under this result's method and k: shows a stored routing "
           "analysis that covers it, or runs one (Routing analysis tab)"));
    analyse_routing_->setEnabled(false);
    connect(analyse_routing_, &QAction::triggered, this, &ResultsView::requestRoutingAnalysis);
    top->addWidget(buttonFor(analyse_routing_, box));
    top->addWidget(buttonFor(open_in_probe_, box));
    top->addWidget(buttonFor(export_predictions_, box));
    auto* layout = new QVBoxLayout(box);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(top);
    layout->addWidget(predictions_view_, 1);
    return box;
}

void ResultsView::setWorkspace(const WorkspaceView& workspace) {
    workspace_ = workspace;
    roles_.clear();
    for (const WorkspaceTaskView& t : workspace.tasks) {
        roles_[t.name] = t.role;
        // Results are kept by the dataset's file stem, which is the task name in the standard layout.
        if (!t.test.isEmpty()) roles_[QFileInfo(t.test).completeBaseName()] = t.role;
    }
    store_.reset();
    setStatus(tr("Results of workspace '%1' (%2)").arg(workspace.name, workspace.database));
    reload(kLatestRun);
}

void ResultsView::setExperts(const QStringList& experts) {
    experts_ = experts;
}

void ResultsView::refresh() {
    reload(shownRun() == 0 ? kLatestRun : shownRun());
}

void ResultsView::selectRun(qint64 run) {
    const int index = run_->findData(run);
    if (index >= 0) run_->setCurrentIndex(index);
}

qint64 ResultsView::shownRun() const {
    return run_->currentIndex() >= 0 ? run_->currentData().toLongLong() : 0;
}

QString ResultsView::errorText() const {
    return error_->isHidden() ? QString() : error_->text();
}

QString ResultsView::statusText() const {
    return status_->text();
}

// Opens the database when needed, lists its evaluation runs and shows `select` (kLatestRun, kAllRuns or an
// id). A database that cannot be read leaves the view empty with the reason shown; nothing else breaks.
void ResultsView::reload(qint64 select) {
    if (workspace_.database.isEmpty()) return;
    error_->hide();
    error_->clear();
    try {
        if (!store_) store_ = std::make_unique<ResultsStore>(workspace_.database.toStdString());
        fillRunSelector(select);
    } catch (const std::exception& e) {
        showDatabaseError(firstLine(e));
        return;
    }
    new_evaluation_->setEnabled(!evaluating_);
    showSelectedRun();
}

void ResultsView::fillRunSelector(qint64 select) {
    std::vector<RunRecord> runs;
    for (const RunRecord& r : store_->runs())
        if (r.kind == "eval") runs.push_back(r);
    run_->blockSignals(true);
    run_->clear();
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) run_->addItem(runLabel(*it), qint64(it->id));
    if (!runs.empty()) run_->addItem(tr("All runs"), kAllRuns);
    const int index = run_->findData(select);
    run_->setCurrentIndex(index >= 0 ? index : 0);  // newest first, so 0 is the latest
    run_->blockSignals(false);
}

QList<ResultRow> ResultsView::rowsOf(qint64 run) const {
    QList<ResultRow> rows;
    for (const RunRecord& r : store_->runs()) {
        if (r.kind != "eval" || (run != kAllRuns && r.id != run)) continue;
        for (const MetricRecord& m : store_->metrics(r.id))
            rows << ResultRow{.run = r.id,
                              .started_at = q(r.started_at),
                              .status = q(r.status),
                              .method = q(m.method),
                              .top_k = m.top_k,
                              .dataset = q(m.dataset),
                              .role = roles_.value(q(m.dataset)),
                              .metric = q(m.metric),
                              .value = m.value,
                              .examples = m.examples};
    }
    return rows;
}

void ResultsView::showSelectedRun() {
    const qint64 run = shownRun();
    QList<ResultRow> rows;
    if (store_ && run != 0) {
        try {
            rows = rowsOf(run);
        } catch (const std::exception& e) {
            showDatabaseError(firstLine(e));
            return;
        }
    }
    metrics_->setRows(rows);
    updateFilterChoices();
    // One run's id, date and status are in the run selector already; all runs need them per row.
    for (int c : {ResultsTableModel::Run, ResultsTableModel::Date, ResultsTableModel::Status})
        metrics_view_->setColumnHidden(c, run != kAllRuns);
    metrics_view_->resizeColumnsToContents();
    QString title = tr("No evaluation runs yet");
    if (run == kAllRuns)
        title = tr("Accuracy per dataset: the latest result of every method over all runs");
    else if (run > 0 && !rows.isEmpty())
        title = tr("Accuracy per dataset: run %1 (%2)").arg(run).arg(rows.front().status);
    else if (run > 0)
        title = tr("Run %1 has no results (it stopped before its first method x dataset cell)").arg(run);
    chart_->showData(accuracyChartData(rows, title));
    showPredictionsOf({});
    Q_EMIT resultsShown();
}

void ResultsView::updateFilterChoices() {
    QStringList methods, datasets;
    for (const ResultRow& r : metrics_->rows()) {
        const QString key = methodKey(r.method, r.top_k);
        if (!methods.contains(key)) methods << key;
        if (!datasets.contains(r.dataset)) datasets << r.dataset;
    }
    resetChoices(method_, tr("All methods"), methods);
    resetChoices(dataset_, tr("All datasets"), datasets);
    metrics_filter_->setMethod(method_->currentData().toString());
    metrics_filter_->setDataset(dataset_->currentData().toString());
}

void ResultsView::showPredictionsOf(const QModelIndex& proxy_index) {
    if (!proxy_index.isValid() || !store_) {
        analyse_routing_->setEnabled(false);
        predictions_->setRows({});
        predictions_caption_->setText(tr("Select a result row to see its predictions."));
        return;
    }
    const ResultRow r = metrics_->row(metrics_filter_->mapToSource(proxy_index).row());
    shown_method_ = r.method;
    shown_top_k_ = int(r.top_k);
    shown_run_ = r.run;
    shown_dataset_ = r.dataset;
    open_in_probe_->setEnabled(false);
    analyse_routing_->setEnabled(analysable());
    QList<PredictionRow> rows;
    try {
        for (const PredictionRecord& p : store_->predictions(r.run))
            if (q(p.method) == r.method && p.top_k == r.top_k && q(p.dataset) == r.dataset)
                rows << PredictionRow{.example = p.example_index,
                                      .input = q(p.input),
                                      .target = q(p.target),
                                      .prediction = q(p.prediction),
                                      .correct = p.correct,
                                      .score = p.score};
    } catch (const std::exception& e) {
        showDatabaseError(firstLine(e));
        return;
    }
    const auto correct =
        std::count_if(rows.begin(), rows.end(), [](const PredictionRow& p) { return p.correct; });
    predictions_->setRows(rows);
    predictions_view_->resizeColumnToContents(PredictionsTableModel::Example);
    predictions_caption_->setText(
        tr("<b>%1</b> on <b>%2</b> (run %3): %4 of %5 correct")
            .arg(methodKey(r.method, r.top_k).toHtmlEscaped(), r.dataset.toHtmlEscaped())
            .arg(r.run)
            .arg(correct)
            .arg(rows.size()));
    Q_EMIT predictionsShown();
}

void ResultsView::showDatabaseError(const QString& message) {
    store_.reset();
    run_->blockSignals(true);
    run_->clear();
    run_->blockSignals(false);
    metrics_->setRows({});
    predictions_->setRows({});
    updateFilterChoices();
    chart_->showData(accuracyChartData({}, tr("No results: the database cannot be read")));
    error_->setText(tr("Cannot read the results database: %1").arg(message));
    error_->show();
    new_evaluation_->setEnabled(false);
    Q_EMIT resultsShown();
}

void ResultsView::setStatus(const QString& text) {
    status_->setText(text);
}

void ResultsView::newEvaluation() {
    if (workspace_.database.isEmpty() || evaluating_) return;
    NewEvaluationDialog dialog(workspace_, experts_, this);
    if (dialog.exec() == QDialog::Accepted) startEvaluation(dialog.request());
}

void ResultsView::startEvaluation(const EvaluationRequest& request) {
    if (evaluating_) return;
    EvaluationRequest r = request;
    if (r.database.isEmpty()) r.database = workspace_.database;
    if (r.on_slurm) {  // the Jobs tab follows it; its cells arrive as one run once collected
        setStatus(
            tr("Sent %n cell(s) to Slurm: the Jobs tab follows them; the run appears here once collected.",
               nullptr, int(r.methods.size() * r.datasets.size())));
        Q_EMIT clusterEvaluationRequested(r);
        return;
    }
    evaluating_ = true;
    new_evaluation_->setEnabled(false);
    progress_->setRange(0, 0);  // busy until the first report gives the total
    progress_label_->setText(tr("Starting the evaluation..."));
    cancel_->setEnabled(true);
    progress_row_->show();
    Q_EMIT evaluationRequested(r);
}

void ResultsView::showEvaluationProgress(qint64 done, qint64 total, const QString& method,
                                         const QString& dataset) {
    if (!evaluating_ || !cancel_->isEnabled()) return;  // after Cancel the label says so until the end
    progress_->setRange(0, int(total));
    progress_->setValue(int(done));
    progress_label_->setText(tr("%1 on %2").arg(method, dataset));
}

void ResultsView::finishEvaluation(qint64 run, const QString& status, const QStringList& warnings) {
    evaluating_ = false;
    progress_row_->hide();
    new_evaluation_->setEnabled(true);
    QString text;
    if (status == QLatin1String("finished"))
        text = tr("Run %1 finished.").arg(run);
    else if (status == QLatin1String("cancelled"))
        text = tr("Run %1 was cancelled; the cells it finished are kept.").arg(run);
    else
        text = tr("The evaluation failed; whatever it finished is kept in its run.");
    // The CLI prints these on stderr; here they stay in the status line until the next action.
    for (const QString& w : warnings) text += " " + tr("Warning: %1").arg(w);
    setStatus(text);
    reload(run > 0 ? run : kLatestRun);
    Q_EMIT evaluationEnded(run, status);
}

void ResultsView::exportMetricsCsv(const QString& file) const {
    saveTableAsCsv(*metrics_filter_, file, ResultsTableModel::kRawRole);
}

void ResultsView::exportPredictionsCsv(const QString& file) const {
    saveTableAsCsv(*predictions_filter_, file, PredictionsTableModel::kRawRole);
}

void ResultsView::saveChart(const QString& file) const {
    chart_->save(file);
}

void ResultsView::exportWithDialog(const QString& title, const QString& filters,
                                   const std::function<void(const QString&)>& write) {
    QString chosen_filter;
    QString file = QFileDialog::getSaveFileName(this, title, QString(), filters, &chosen_filter);
    if (file.isEmpty()) return;
    if (QFileInfo(file).suffix().isEmpty())  // the suffix of the chosen filter, "(*.pdf)" -> ".pdf"
        file += chosen_filter.section(QStringLiteral("*"), 1).section(QLatin1Char(')'), 0, 0);
    try {
        write(file);
        setStatus(tr("Saved %1").arg(file));
    } catch (const std::exception& e) {
        QMessageBox::warning(this, title, firstLine(e));
    }
}

}  // namespace phatgoose::ui
