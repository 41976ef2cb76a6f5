#include "ui/experts/experts_view.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <algorithm>

#include "ui/experts/expert_table_model.h"
#include "ui/experts/step_ticker.h"
#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/plot/table_export.h"

namespace phatgoose::ui {
namespace {

void plotCurve(QCPGraph* graph, const QVector<double>& losses, const QString& name) {
    QVector<double> steps(losses.size());
    for (int i = 0; i < losses.size(); ++i) steps[i] = i + 1;
    graph->setData(steps, losses, true);
    graph->setName(losses.isEmpty() ? name + QObject::tr(" (none recorded)") : name);
}

}  // namespace

ExpertsView::ExpertsView(QWidget* parent) : QWidget(parent) {
    model_ = new ExpertTableModel(this);
    sorted_ = new QSortFilterProxyModel(this);
    sorted_->setSourceModel(model_);
    sorted_->setSortRole(ExpertTableModel::kRawRole);
    table_ = new QTableView(this);
    table_->setModel(sorted_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(ExpertTableModel::Name, Qt::AscendingOrder);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setAlternatingRowColors(true);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setStretchLastSection(false);
    table_->setContextMenuPolicy(Qt::CustomContextMenu);
    sorted_->setFilterKeyColumn(-1);  // any column: a name, a task, "yes" for gated
    sorted_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    filter_ = new QLineEdit(this);
    filter_->setPlaceholderText(tr("Filter experts by name, task or any column..."));
    filter_->setClearButtonEnabled(true);
    counts_ = new QLabel(this);

    plot_ = new QCustomPlot(this);
    plot_->plotLayout()->insertRow(0);
    title_ = new QCPTextElement(plot_, tr("Select an expert to see its loss curves"));
    plot_->plotLayout()->addElement(0, 0, title_);
    plot_->xAxis->setLabel(tr("step"));
    plot_->yAxis->setLabel(tr("training loss (mean token cross-entropy)"));
    plot_->xAxis->setTicker(stepTicker());
    plot_->legend->setVisible(true);
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot_->addGraph()->setPen(QPen(QColor(31, 119, 180), 2));
    plot_->addGraph()->setPen(QPen(QColor(255, 127, 14), 2));
    plot_->graph(0)->setName(tr("expert training"));
    plot_->graph(1)->setName(tr("gate training"));
    plot_->setContextMenuPolicy(Qt::CustomContextMenu);
    plot_->setMinimumHeight(220);

    auto* train_gates = new QPushButton(tr("Train gates..."), this);
    auto* train_expert = new QPushButton(tr("Train new expert..."), this);
    auto* export_csv = new QPushButton(tr("Export table (CSV)..."), this);
    auto* save_png = new QPushButton(tr("Save plot (PNG)..."), this);
    auto* save_pdf = new QPushButton(tr("Save plot (PDF)..."), this);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(train_gates);
    buttons->addWidget(train_expert);
    buttons->addStretch(1);
    buttons->addWidget(export_csv);
    buttons->addWidget(save_png);
    buttons->addWidget(save_pdf);

    auto* table_box = new QWidget(this);
    auto* table_layout = new QVBoxLayout(table_box);
    table_layout->setContentsMargins(0, 0, 0, 0);
    auto* filter_row = new QHBoxLayout;
    filter_row->addWidget(filter_, 1);
    filter_row->addWidget(counts_);
    table_layout->addLayout(filter_row);
    table_layout->addWidget(table_, 1);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(table_box);
    split->addWidget(plot_);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(buttons);
    layout->addWidget(split, 1);

    connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &ExpertsView::showCurves);
    connect(filter_, &QLineEdit::textChanged, this, &ExpertsView::setFilter);
    connect(table_, &QWidget::customContextMenuRequested, this, &ExpertsView::showTableMenu);
    connect(plot_, &QWidget::customContextMenuRequested, this, &ExpertsView::showPlotMenu);
    connect(train_gates, &QPushButton::clicked, this,
            [this] { Q_EMIT trainGatesRequested(selectedExperts()); });
    connect(train_expert, &QPushButton::clicked, this, &ExpertsView::trainExpertRequested);
    connect(export_csv, &QPushButton::clicked, this, &ExpertsView::askExportCsv);
    connect(save_png, &QPushButton::clicked, this, [this] { askSavePlot("png"); });
    connect(save_pdf, &QPushButton::clicked, this, [this] { askSavePlot("pdf"); });
}

void ExpertsView::setExperts(const QList<ExpertRowView>& experts) {
    // A refresh (after training) keeps the user's selection.
    const QStringList selected = selectedExperts();
    model_->setExperts(experts);
    table_->resizeColumnsToContents();
    // The free width goes to the target list, the one column whose text may be long.
    table_->horizontalHeader()->setSectionResizeMode(ExpertTableModel::Targets, QHeaderView::Stretch);
    for (const QString& name : selected) selectExpert(name);
    if (table_->selectionModel()->selectedRows().isEmpty()) showCurves();
    updateCounts();
    Q_EMIT expertsShown(int(experts.size()));
}

void ExpertsView::setFilter(const QString& text) {
    if (filter_->text() != text) filter_->setText(text);  // from code: show it in the box too
    sorted_->setFilterFixedString(text);
    updateCounts();
}

int ExpertsView::shownCount() const {
    return sorted_->rowCount();
}

QString ExpertsView::countText() const {
    return counts_->text();
}

void ExpertsView::updateCounts() {
    const int total = int(model_->experts().size());
    const auto gated = std::count_if(model_->experts().begin(), model_->experts().end(),
                                     [](const ExpertRowView& e) { return e.has_gate; });
    counts_->setText(
        shownCount() == total
            ? tr("%1 experts · %2 with a gate").arg(total).arg(gated)
            : tr("%1 of %2 experts shown · %3 with a gate").arg(shownCount()).arg(total).arg(gated));
}

const QList<ExpertRowView>& ExpertsView::experts() const {
    return model_->experts();
}

QStringList ExpertsView::selectedExperts() const {
    QStringList names;
    for (const QModelIndex& row : table_->selectionModel()->selectedRows(ExpertTableModel::Name))
        names << row.data(ExpertTableModel::kRawRole).toString();
    return names;
}

bool ExpertsView::selectExpert(const QString& name) {
    for (int r = 0; r < sorted_->rowCount(); ++r) {
        const QModelIndex index = sorted_->index(r, ExpertTableModel::Name);
        if (index.data(ExpertTableModel::kRawRole).toString() != name) continue;
        table_->selectionModel()->select(index,
                                         QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        table_->scrollTo(index);
        return true;
    }
    return false;
}

void ExpertsView::showCurves() {
    const QModelIndexList rows = table_->selectionModel()->selectedRows();
    // Several selected: the curves of the one most recently clicked.
    const QModelIndex current = table_->currentIndex();
    QModelIndex pick = rows.isEmpty() ? QModelIndex() : rows.last();
    for (const QModelIndex& r : rows)
        if (current.isValid() && r.row() == current.row()) pick = r;
    if (!pick.isValid()) {
        plotCurve(plot_->graph(0), {}, tr("expert training"));
        plotCurve(plot_->graph(1), {}, tr("gate training"));
        title_->setText(QString());
        plot_->legend->setVisible(false);
        setPlotHint(plot_, model_->experts().isEmpty()
                               ? tr("No experts loaded: open a workspace or a library")
                               : tr("Select an expert to see its loss curves"));
        replotWhenShown();
        return;
    }
    setPlotHint(plot_, QString());
    plot_->legend->setVisible(true);
    const ExpertRowView& e = model_->experts()[sorted_->mapToSource(pick).row()];
    plotCurve(plot_->graph(0), e.expert_curve, tr("expert training"));
    plotCurve(plot_->graph(1), e.gate_curve, tr("gate training"));
    title_->setText(tr("Loss curves of expert '%1'").arg(e.name));
    plot_->rescaleAxes();
    // A margin below, room above the highest point for the legend, and zero kept in view when near.
    const QCPRange y = plot_->yAxis->range();
    const double margin = std::max(0.05 * y.size(), 0.05);
    const double lower = y.lower > 0 && y.lower < 0.3 * y.upper ? 0.0 : y.lower - margin;
    plot_->yAxis->setRange(lower, y.upper + 0.2 * (y.upper - lower) + margin);
    const QCPRange x = plot_->xAxis->range();
    plot_->xAxis->setRange(0, std::max(x.upper, 2.0) + 0.5);
    replotWhenShown();
}

void ExpertsView::replotWhenShown() {
    // A hidden tab's plot may have no size yet: drawing it then gives empty buffers and warnings.
    if (isVisible()) plot_->replot();
}

void ExpertsView::showEvent(QShowEvent* event) {
    QWidget::showEvent(event);
    plot_->replot(QCustomPlot::rpQueuedReplot);  // after the layout has given the plot its size
}

bool ExpertsView::exportCsv(const QString& file, QString* error) const {
    try {
        saveTableAsCsv(*sorted_, file, ExpertTableModel::kRawRole);
        return true;
    } catch (const std::exception& e) {
        if (error) *error = QString::fromStdString(e.what());
        return false;
    }
}

bool ExpertsView::savePlot(const QString& file) {
    return ui::savePlot(plot_, file, nullptr);
}

void ExpertsView::showTableMenu(const QPoint& at) {
    QMenu menu(this);
    const QStringList selected = selectedExperts();
    menu.addAction(tr("Train gates of the selected experts..."), this,
                   [this, selected] { Q_EMIT trainGatesRequested(selected); })
        ->setEnabled(!selected.isEmpty());
    menu.addAction(tr("Train new expert..."), this, &ExpertsView::trainExpertRequested);
    menu.addSeparator();
    menu.addAction(tr("Export table (CSV)..."), this, &ExpertsView::askExportCsv);
    menu.exec(table_->viewport()->mapToGlobal(at));
}

void ExpertsView::showPlotMenu(const QPoint& at) {
    QMenu menu(this);
    menu.addAction(tr("Save plot (PNG)..."), this, [this] { askSavePlot("png"); });
    menu.addAction(tr("Save plot (PDF)..."), this, [this] { askSavePlot("pdf"); });
    menu.exec(plot_->mapToGlobal(at));
}

void ExpertsView::askExportCsv() {
    const QString file =
        QFileDialog::getSaveFileName(this, tr("Export the experts table"), "experts.csv", tr("CSV (*.csv)"));
    if (file.isEmpty()) return;
    QString error;
    if (!exportCsv(file, &error)) QMessageBox::warning(this, tr("Export failed"), error);
}

void ExpertsView::askSavePlot(const QString& format) {
    savePlotInteractively(plot_, "loss_curves", format);
}

}  // namespace phatgoose::ui
