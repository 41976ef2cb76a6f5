#include "ui/analysis/routing_analysis_view.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "error.h"
#include "routing/routing_summary.h"
#include "store/results_store.h"
#include "ui/analysis/labeled_heatmap.h"
#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/plot/table_export.h"
#include "ui/probe/routing_method_picker.h"

namespace phatgoose::ui {
namespace {

std::vector<std::vector<double>> transposed(const std::vector<std::vector<double>>& m) {
    if (m.empty()) return {};
    std::vector<std::vector<double>> t(m.front().size(), std::vector<double>(m.size()));
    for (size_t r = 0; r < m.size(); ++r)
        for (size_t c = 0; c < m[r].size(); ++c) t[c][r] = m[r][c];
    return t;
}

QString runLabel(const RunRecord& run) {
    const auto settings = nlohmann::json::parse(run.settings, nullptr, false);
    QString what = QObject::tr("run %1").arg(run.id);
    if (!settings.is_discarded() && settings.contains("method"))
        what += QObject::tr(": %1 top-%2")
                    .arg(QString::fromStdString(settings.value("method", std::string())))
                    .arg(settings.value("top_k", 0));
    return what +
           QObject::tr(" (%1, %2)")
               .arg(QString::fromStdString(run.status), QString::fromStdString(run.started_at).left(16));
}

}  // namespace

RoutingAnalysisView::RoutingAnalysisView(QWidget* parent) : QWidget(parent) {
    picker_ = new RoutingMethodPicker(this);
    picker_->setPinAvailable(false);  // statistics over datasets have no token span to pin
    start_ = new QPushButton(tr("New analysis"), this);
    start_->setToolTip(tr("Route every example of the workspace's test sets and store the statistics"));
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    progress_ = new QProgressBar(this);
    progress_->setVisible(false);
    status_ = new QLabel(this);
    runs_ = new QComboBox(this);
    runs_->setMinimumContentsLength(32);
    stack_ = new QComboBox(this);
    stack_->addItems({tr("Both stacks"), tr("Encoder"), tr("Decoder")});
    kind_ = new QComboBox(this);
    kind_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    layer_ = new QSpinBox(this);
    layer_->setRange(-1, 0);
    layer_->setSpecialValueText(tr("every layer"));
    view_ = new QComboBox(this);
    view_->addItems({tr("Datasets x experts"), tr("Dataset similarity")});
    export_ = new QPushButton(tr("Export CSV..."), this);

    auto* top = new QHBoxLayout;
    top->addWidget(picker_);
    top->addWidget(start_);
    top->addWidget(cancel_);
    top->addWidget(progress_, 1);
    top->addWidget(status_, 1);
    auto* second = new QHBoxLayout;
    for (auto [label, widget] : std::initializer_list<std::pair<QString, QWidget*>>{{tr("Analysis"), runs_},
                                                                                    {tr("Modules"), stack_},
                                                                                    {tr("kind"), kind_},
                                                                                    {tr("layer"), layer_},
                                                                                    {tr("View"), view_}}) {
        second->addWidget(new QLabel(label, this));
        second->addWidget(widget);
    }
    second->addStretch(1);
    second->addWidget(export_);

    weights_ = new LabeledHeatmap("routing_by_dataset", this);
    similarity_ = new LabeledHeatmap("dataset_similarity", this);
    maps_ = new QStackedWidget(this);
    maps_->addWidget(weights_);
    maps_->addWidget(similarity_);
    profile_ = new QCustomPlot(this);
    addPlotTitle(profile_, tr("Click a cell for its layer profile"));
    profile_->addGraph()->setName(tr("encoder layers"));
    profile_->addGraph()->setName(tr("decoder layers"));
    profile_->graph(0)->setPen(QPen(QColor(31, 119, 180), 2));
    profile_->graph(1)->setPen(QPen(QColor(214, 39, 40), 2));
    for (int g = 0; g < 2; ++g)
        profile_->graph(g)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    profile_->legend->setVisible(true);
    placeLegendAbove(profile_);
    profile_->xAxis->setLabel(tr("layer (block)"));
    QSharedPointer<QCPAxisTickerFixed> whole_layers(new QCPAxisTickerFixed);
    whole_layers->setTickStep(1.0);
    whole_layers->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    profile_->xAxis->setTicker(whole_layers);
    profile_->yAxis->setLabel(tr("mean routing weight"));
    addPlotExportMenu(profile_, "layer_profile");
    setPlotHint(profile_, tr("Click a cell of the heatmap"));
    auto* split = new QSplitter(this);
    split->addWidget(maps_);
    split->addWidget(profile_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addLayout(second);
    layout->addWidget(split, 1);

    connect(start_, &QPushButton::clicked, this, &RoutingAnalysisView::requestAnalysis);
    connect(cancel_, &QPushButton::clicked, this, [this] {
        cancel_->setEnabled(false);
        status_->setText(tr("Cancelling after the current batch ..."));
        Q_EMIT cancelRequested();
    });
    connect(runs_, &QComboBox::activated, this,
            [this](int index) { showRun(runs_->itemData(index).toLongLong()); });
    for (QComboBox* box : {stack_, kind_, view_})
        connect(box, &QComboBox::currentIndexChanged, this, &RoutingAnalysisView::redraw);
    connect(layer_, &QSpinBox::valueChanged, this, &RoutingAnalysisView::redraw);
    connect(weights_, &LabeledHeatmap::cellClicked, this, [this](int row, int column) {
        showProfile(row_order_[size_t(row)], column_order_[size_t(column)]);
    });
    connect(similarity_, &LabeledHeatmap::cellClicked, this, [this](int row, int) {
        status_->setText(tr("%1: the datasets that route most like it sit next to it")
                             .arg(datasetLabel(statistics_.datasets[row_order_[size_t(row)]].name)));
    });
    connect(export_, &QPushButton::clicked, this, [this] {
        const QString file = QFileDialog::getSaveFileName(this, tr("Export the matrix as CSV"), "routing.csv",
                                                          tr("CSV files (*.csv)"));
        if (file.isEmpty()) return;
        try {
            exportCsv(file);
            status_->setText(tr("Saved %1").arg(file));
        } catch (const std::exception& e) {
            QMessageBox::warning(this, tr("Export"), QString::fromUtf8(e.what()));
        }
    });
    redraw();
}

void RoutingAnalysisView::setWorkspace(const WorkspaceView& workspace) {
    workspace_ = workspace;
    reloadRuns();
}

void RoutingAnalysisView::setExpertNames(const QStringList& names) {
    picker_->setExpertNames(names);
}

QStringList RoutingAnalysisView::testSets() const {
    QStringList files;
    for (const WorkspaceTaskView& t : workspace_.tasks)
        if (!(t.test.isEmpty() ? t.valid : t.test).isEmpty()) files << (t.test.isEmpty() ? t.valid : t.test);
    return files;
}

void RoutingAnalysisView::requestAnalysis() {
    const QStringList files = testSets();
    if (workspace_.database.isEmpty() || files.isEmpty()) {
        status_->setText(tr("Open a workspace with task datasets first"));
        return;
    }
    start({.database = workspace_.database,
           .method = picker_->method(),
           .top_k = picker_->topK(),
           .datasets = files,
           .batch_size = 8,
           .exclude = picker_->excluded()});
}

void RoutingAnalysisView::start(const RoutingAnalysisRequest& request) {
    start_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setVisible(true);
    progress_->setRange(0, 0);
    status_->clear();
    Q_EMIT analysisRequested(request);
}

qint64 RoutingAnalysisView::storedRunFor(const RoutingAnalysisRequest& request) const {
    std::set<std::string> wanted;
    for (const QString& file : request.datasets)
        wanted.insert(QFileInfo(file).completeBaseName().toStdString());
    const std::vector<std::string> exclude = [&] {
        std::vector<std::string> names;
        for (const QString& n : request.exclude) names.push_back(n.toStdString());
        return names;
    }();
    const ResultsStore store(workspace_.database.toStdString());
    const std::vector<RunRecord> runs = store.runs();
    for (auto r = runs.rbegin(); r != runs.rend(); ++r) {  // newest first
        if (r->kind != "route-stats") continue;
        const auto settings = nlohmann::json::parse(r->settings, nullptr, false);
        if (settings.is_discarded() ||
            settings.value("method", std::string()) != request.method.toStdString() ||
            settings.value("top_k", int64_t(0)) != request.top_k ||
            settings.value("exclude", std::vector<std::string>()) != exclude)
            continue;
        std::set<std::string> stored;
        for (const DatasetRoutingStatistics& d : store.routingStatistics(r->id)) stored.insert(d.name);
        if (std::includes(stored.begin(), stored.end(), wanted.begin(), wanted.end())) return r->id;
    }
    return -1;
}

void RoutingAnalysisView::analyseDatasets(const RoutingAnalysisRequest& request) {
    qint64 run = -1;
    try {
        run = storedRunFor(request);
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return;
    }
    if (run < 0) {
        picker_->setMethod(request.method);
        picker_->setTopK(request.top_k);
        picker_->setExcluded(request.exclude);
        return start(request);
    }
    reloadRuns(run);
    const std::string first = QFileInfo(request.datasets.value(0)).completeBaseName().toStdString();
    for (size_t d = 0; d < statistics_.datasets.size(); ++d) {
        if (statistics_.datasets[d].name != first) continue;
        const std::vector<double> weights = datasetExpertWeights(statistics_, {})[d];
        showProfile(d, size_t(std::max_element(weights.begin(), weights.end()) - weights.begin()));
    }
    status_->setText(tr("Stored analysis run %1 covers %2").arg(run).arg(QString::fromStdString(first)));
}

void RoutingAnalysisView::showProgress(qint64 done, qint64 total, const QString& dataset) {
    progress_->setRange(0, int(total));
    progress_->setValue(int(done));
    progress_->setFormat(tr("%v / %m examples, %1").arg(dataset));
}

void RoutingAnalysisView::finishAnalysis(qint64 run, const QString& status) {
    start_->setEnabled(true);
    cancel_->setEnabled(false);
    progress_->setVisible(false);
    status_->setText(status == "finished" ? tr("Analysis stored as run %1").arg(run)
                     : status == "cancelled"
                         ? tr("Cancelled; the finished datasets are kept in run %1").arg(run)
                         : tr("The analysis failed"));
    if (run >= 0) reloadRuns(run);
}

void RoutingAnalysisView::reloadRuns(qint64 select) {
    runs_->clear();
    statistics_ = {};
    if (!workspace_.database.isEmpty()) {
        try {
            const ResultsStore store(workspace_.database.toStdString());
            for (const RunRecord& r : store.runs())
                if (r.kind == "route-stats") runs_->insertItem(0, runLabel(r), qint64(r.id));  // newest first
        } catch (const std::exception& e) {
            status_->setText(QString::fromUtf8(e.what()));
        }
    }
    const int at = select >= 0 ? runs_->findData(select) : 0;
    if (runs_->count() > 0 && at >= 0) {
        runs_->setCurrentIndex(at);
        return showRun(runs_->itemData(at).toLongLong());
    }
    redraw();
}

void RoutingAnalysisView::showRun(qint64 run) {
    statistics_ = {};
    try {
        const ResultsStore store(workspace_.database.toStdString());
        const auto record = store.run(run);
        if (!record) throw Error("no run " + std::to_string(run));
        const auto settings = nlohmann::json::parse(record->settings);
        statistics_.method = settings.at("method").get<std::string>();
        statistics_.top_k = settings.at("top_k").get<int64_t>();
        statistics_.expert_names = settings.at("expert_names").get<std::vector<std::string>>();
        statistics_.datasets = store.routingStatistics(run);
    } catch (const std::exception& e) {
        statistics_ = {};
        status_->setText(tr("Run %1 cannot be shown: %2").arg(run).arg(QString::fromUtf8(e.what())));
    }
    // The module kinds and layers this run has, for the selectors.
    std::set<std::string> kinds;
    int64_t blocks = 0;
    for (const DatasetRoutingStatistics& d : statistics_.datasets)
        for (const SiteStatistics& s : d.sites) {
            const SiteAddress a = parseSiteName(s.site);
            kinds.insert(a.kind);
            blocks = std::max(blocks, a.block + 1);
        }
    const QSignalBlocker block_kind(kind_), block_layer(layer_);
    kind_->clear();
    kind_->addItem(tr("every kind"), QString());
    for (const std::string& k : kinds) kind_->addItem(QString::fromStdString(k), QString::fromStdString(k));
    layer_->setRange(-1, int(std::max<int64_t>(0, blocks - 1)));
    layer_->setValue(-1);
    redraw();
}

QString RoutingAnalysisView::datasetLabel(const std::string& name) const {
    for (const WorkspaceTaskView& t : workspace_.tasks)
        if (t.name.toStdString() == name && t.role == "held-out")
            return QString::fromStdString(name) + tr(" [held-out]");
    return QString::fromStdString(name);
}

void RoutingAnalysisView::redraw() {
    const ModuleSelection selection{.stack = ModuleSelection::Stack(stack_->currentIndex()),
                                    .block = layer_->value(),
                                    .kind = kind_->currentData().toString().toStdString()};
    const auto matrix = datasetExpertWeights(statistics_, selection);
    row_order_ = similarityOrder(matrix);
    column_order_ = similarityOrder(transposed(matrix));
    std::vector<std::vector<double>> drawn;
    QStringList rows, columns;
    for (size_t r : row_order_) {
        std::vector<double> row;
        for (size_t c : column_order_) row.push_back(matrix[r][c]);
        drawn.push_back(std::move(row));
        rows << datasetLabel(statistics_.datasets[r].name);
    }
    for (size_t c : column_order_) columns << QString::fromStdString(statistics_.expert_names[c]);
    double high = 0.0;
    for (const auto& row : drawn)
        for (double v : row) high = std::max(high, v);
    const QString hint = runs_->count() == 0 ? tr("No routing analysis yet: press New analysis")
                                             : tr("No modules match this selection");
    const QString title =
        tr("Mean routing weight, %1 top-%2, %3")
            .arg(QString::fromStdString(statistics_.method))
            .arg(statistics_.top_k)
            .arg(stack_->currentText() +
                 (kind_->currentIndex() > 0 ? ", " + kind_->currentText() : QString()) +
                 (layer_->value() >= 0 ? tr(", layer %1").arg(layer_->value()) : QString()));
    weights_->setMatrix(drawn, rows, columns, 0.0, high > 0 ? high : 1.0, title, tr("mean weight"), hint);
    const auto cosine = cosineSimilarity(matrix);
    std::vector<std::vector<double>> ordered;
    for (size_t r : row_order_) {
        std::vector<double> row;
        for (size_t c : row_order_) row.push_back(cosine[r][c]);
        ordered.push_back(std::move(row));
    }
    similarity_->setMatrix(ordered, rows, rows, 0.0, 1.0,
                           tr("How alike the datasets route (cosine of their weights)"), tr("cosine"), hint);
    maps_->setCurrentIndex(view_->currentIndex());
}

void RoutingAnalysisView::showProfile(size_t dataset, size_t expert) {
    const DatasetRoutingStatistics& d = statistics_.datasets.at(dataset);
    const std::string kind = kind_->currentData().toString().toStdString();
    for (int g = 0; g < 2; ++g) {
        const std::vector<double> values = layerProfile(d, expert, g == 1, kind);
        QVector<double> x, y;
        for (size_t b = 0; b < values.size(); ++b)
            if (!std::isnan(values[b])) {
                x << double(b);
                y << values[b];
            }
        profile_->graph(g)->setData(x, y);
    }
    setPlotHint(profile_, QString());
    auto* title = qobject_cast<QCPTextElement*>(profile_->plotLayout()->element(0, 0));
    if (title)
        title->setText(
            tr("%1 on %2, layer by layer")
                .arg(datasetLabel(d.name), QString::fromStdString(statistics_.expert_names.at(expert))));
    profile_->rescaleAxes();
    profile_->xAxis->setRange(profile_->xAxis->range().lower - 0.5, profile_->xAxis->range().upper + 0.5);
    profile_->yAxis->setRange(0.0, std::max(0.05, profile_->yAxis->range().upper * 1.1));
    profile_->replot();
}

void RoutingAnalysisView::exportCsv(const QString& file) const {
    const LabeledHeatmap* map = view_->currentIndex() == 0 ? weights_ : similarity_;
    QString text = csvField(tr("dataset"));
    for (const QString& c : map->columnLabels()) text += "," + csvField(c);
    text += "\n";
    for (size_t r = 0; r < map->values().size(); ++r) {
        text += csvField(map->rowLabels().value(int(r)));
        for (double v : map->values()[r]) text += "," + QString::number(v, 'g', 10);
        text += "\n";
    }
    QSaveFile out(file);
    if (!out.open(QIODevice::WriteOnly) || out.write(text.toUtf8()) < 0 || !out.commit())
        throw Error(file.toStdString() + ": cannot write: " + out.errorString().toStdString());
}

}  // namespace phatgoose::ui
