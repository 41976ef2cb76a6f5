#include "ui/probe/routing_heatmap.h"

#include <QHBoxLayout>
#include <QMouseEvent>
#include <QScrollArea>
#include <QSet>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "ui/plot/expert_legend.h"
#include "ui/plot/expert_palette.h"
#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {

namespace {

// Up to this many experts the colour scale's ticks name them; beyond it the names overprint.
constexpr int kScaleNames = 12;
constexpr int kRowPixels = 15;  // a readable row when every expert is shown

}  // namespace

QString namePrefix(const QString& name) {
    for (int i = 1; i < name.size(); ++i)
        if (name[i] == '_' || name[i] == '-' || name[i] == '.' || name[i].isUpper()) return name.left(i);
    return QString();
}

RoutingHeatmap::RoutingHeatmap(QWidget* parent)
    : QWidget(parent),
      plot_(new QCustomPlot),
      scroll_(new QScrollArea(this)),
      legend_(new ExpertLegend(this)) {
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    scroll_->setWidget(plot_);
    scroll_->setWidgetResizable(true);
    scroll_->setFrameShape(QFrame::NoFrame);
    layout->addWidget(scroll_, 1);
    layout->addWidget(legend_);
    legend_->setVisible(false);
    legend_->setToolTip(tr("Experts drawn in the heatmap, with the number of cells each colours"));
    const ColorMapWithScale parts = addColorMapWithScale(plot_);
    map_ = parts.map;
    scale_ = parts.scale;
    title_ = addPlotTitle(plot_);
    plot_->xAxis->setTickLabelRotation(60);
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, &RoutingHeatmap::hover);
    connect(plot_, &QCustomPlot::mousePress, this, &RoutingHeatmap::click);
    addPlotExportMenu(plot_, "routing_heatmap");
    redraw();
}

void RoutingHeatmap::setTrace(const phatgoose::RoutingTrace& trace) {
    trace_ = trace;
    site_ = trace_.sites.empty() ? -1 : 0;
    selected_ = -1;
    redraw();
}

void RoutingHeatmap::showSite(const QString& site_name) {
    const SiteRouting* site = trace_.find(site_name.toStdString());
    if (!site) return;
    const int index = int(site - trace_.sites.data());
    if (streamOf(*site) != stream_) selected_ = -1;  // a token of the other stream means nothing here
    site_ = index;
    redraw();
}

void RoutingHeatmap::setMode(Mode mode) {
    mode_ = mode;
    redraw();
}

void RoutingHeatmap::setScope(Scope scope) {
    scope_ = scope;
    redraw();
}

void RoutingHeatmap::selectToken(int token) {
    selected_ = token;
    placeSelection();
    plot_->replot();
}

void RoutingHeatmap::setExpertFilter(const QString& text) {
    expert_filter_ = text.trimmed();
    redraw();
}

void RoutingHeatmap::setExpertLimit(int limit) {
    expert_limit_ = std::max(0, limit);
    redraw();
}

void RoutingHeatmap::redraw() {
    cells_.clear();
    row_sites_.clear();
    row_experts_.clear();
    token_labels_.clear();
    plot_->clearItems();  // group lines; the selection items are made again below
    selection_ = new QCPItemRect(plot_);
    selection_->setPen(QPen(QColor(0, 200, 255), 3));
    selection_->setBrush(Qt::NoBrush);
    selection_->setVisible(false);
    current_row_ = new QCPItemRect(plot_);
    current_row_->setPen(QPen(Qt::black, 1.5, Qt::DashLine));
    current_row_->setBrush(Qt::NoBrush);
    current_row_->setVisible(false);
    message_ = new QCPItemText(plot_);
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    message_->setVisible(false);
    legend_->setVisible(false);
    if (site_ < 0) {
        drawEmpty(trace_.method.empty() ? tr("Run a prompt to see which experts every token used.")
                                        : tr("Method '%1' routes no tokens: it records no per-token routing.")
                                              .arg(QString::fromStdString(trace_.method)));
    } else {
        stream_ = streamOf(trace_.sites[size_t(site_)]);
        if (mode_ == Mode::ExpertWeights)
            drawWeights(trace_.sites[size_t(site_)]);
        else
            drawTopExperts();
    }
    placeSelection();
    plot_->replot();
}

void RoutingHeatmap::drawEmpty(const QString& why) {
    fitRows(0);
    map_->setVisible(false);
    scale_->setVisible(false);
    title_->setText(QString());
    message_->setText(why);
    message_->setVisible(true);
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerText));
    plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerText));
    plot_->xAxis->setLabel(QString());
    plot_->yAxis->setLabel(QString());
}

void RoutingHeatmap::setTokenAxis(int tokens) {
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int t = 0; t < tokens; ++t) {
        token_labels_ << tokenPiece(trace_, stream_, t);
        ticks->addTick(t, token_labels_.back());
    }
    plot_->xAxis->setTicker(ticks);
    plot_->xAxis->setRange(-0.5, tokens - 0.5);
    plot_->xAxis->setLabel(tr("%1 token (click to select)").arg(streamName(stream_)));
}

// Copies cells_ into the colour map; NaN cells (no such token) stay transparent.
void RoutingHeatmap::fillMap(int rows, int tokens) {
    map_->data()->setSize(tokens, rows);
    map_->data()->setRange(cellCentres(tokens), cellCentres(rows));
    for (int t = 0; t < tokens; ++t)
        for (int r = 0; r < rows; ++r) {
            const double v = cells_[size_t(r)][size_t(t)];
            map_->data()->setCell(t, r, v < 0 ? std::nan("") : v);
        }
    plot_->yAxis->setRange(-0.5, rows - 0.5);
    fitRows(rows);
    map_->setVisible(rows > 0 && tokens > 0);
    scale_->setVisible(true);
    message_->setVisible(false);
}

// Fits the plot to its rows: many rows (every expert of a large library) get a readable height each and the
// view scrolls; otherwise the plot fills the view.
void RoutingHeatmap::fitRows(int rows) {
    plot_->setMinimumHeight(rows > 40 ? rows * kRowPixels + 160 : 0);
}

std::vector<int> RoutingHeatmap::expertsToShow(const SiteRouting& site) const {
    const int experts = int(trace_.expert_names.size());
    std::vector<double> largest(size_t(experts), 0.0);
    for (size_t i = 0; i < site.experts.size(); ++i)
        largest[size_t(site.experts[i])] =
            std::max(largest[size_t(site.experts[i])], double(site.weights[i]));
    std::vector<int> matching;
    for (int e = 0; e < experts; ++e)
        if (expert_filter_.isEmpty() || QString::fromStdString(trace_.expert_names[size_t(e)])
                                            .contains(expert_filter_, Qt::CaseInsensitive))
            matching.push_back(e);
    if (expert_limit_ > 0 && int(matching.size()) > expert_limit_) {
        std::stable_sort(matching.begin(), matching.end(),
                         [&](int a, int b) { return largest[size_t(a)] > largest[size_t(b)]; });
        matching.resize(size_t(expert_limit_));
        std::sort(matching.begin(), matching.end());  // back to library order: groups stay together
    }
    return matching;
}

// A line between consecutive rows of different name-prefix groups, when the names do fall into groups
// (fewer groups than half the rows: "count_words" and "reverse_words" are not a grouping).
void RoutingHeatmap::markGroups() {
    QSet<QString> groups;
    for (int e : row_experts_)
        groups.insert(namePrefix(QString::fromStdString(trace_.expert_names[size_t(e)])));
    if (groups.size() * 2 > int(row_experts_.size())) return;
    QString previous;
    for (size_t r = 0; r < row_experts_.size(); ++r) {
        const QString group =
            namePrefix(QString::fromStdString(trace_.expert_names[size_t(row_experts_[r])]));
        if (r > 0 && group != previous) {
            auto* line = new QCPItemStraightLine(plot_);
            line->setPen(QPen(QColor(255, 255, 255), 2));
            line->point1->setCoords(-0.5, double(r) - 0.5);
            line->point2->setCoords(1e6, double(r) - 0.5);
        }
        previous = group;
    }
}

void RoutingHeatmap::drawWeights(const SiteRouting& site) {
    const int tokens = int(site.tokens), total = int(trace_.expert_names.size());
    row_experts_ = expertsToShow(site);
    const int rows = int(row_experts_.size());
    std::vector<int> row_of(size_t(total), -1);
    for (int r = 0; r < rows; ++r) row_of[size_t(row_experts_[size_t(r)])] = r;
    cells_.assign(size_t(rows), std::vector<double>(size_t(tokens), 0.0));
    for (int t = 0; t < tokens; ++t)
        for (int j = 0; j < site.k; ++j) {
            const int row = row_of[size_t(site.experts[size_t(t * site.k + j)])];
            if (row >= 0) cells_[size_t(row)][size_t(t)] = site.weights[size_t(t * site.k + j)];
        }
    setTokenAxis(tokens);
    if (rows == 0) {
        drawEmpty(tr("No expert's name contains '%1'.").arg(expert_filter_));
        return;
    }
    fillMap(rows, tokens);
    QSharedPointer<QCPAxisTickerText> y_ticks(new QCPAxisTickerText);
    for (int r = 0; r < rows; ++r)
        y_ticks->addTick(r, QString::fromStdString(trace_.expert_names[size_t(row_experts_[size_t(r)])]));
    plot_->yAxis->setTicker(y_ticks);
    plot_->yAxis->setLabel(
        rows == total
            ? tr("expert")
            : tr("expert (%1 of %2: largest weight in this prompt%3)")
                  .arg(rows)
                  .arg(total)
                  .arg(expert_filter_.isEmpty() ? QString() : tr(", matching '%1'").arg(expert_filter_)));
    markGroups();
    map_->setGradient(QCPColorGradient(QCPColorGradient::gpThermal));
    map_->setDataRange(QCPRange(0, 1));
    scale_->axis()->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    scale_->axis()->setLabel(tr("routing weight"));
    title_->setText(tr("Routing weights at %1").arg(QString::fromStdString(site.site)));
}

void RoutingHeatmap::drawTopExperts() {
    const SiteRouting& current = trace_.sites[size_t(site_)];
    row_sites_ = sitesOfStream(trace_, stream_, scope_ == Scope::SameKind ? current.kind : std::string());
    const int tokens = streamLength(trace_, stream_), rows = int(row_sites_.size());
    const int experts = int(trace_.expert_names.size());
    cells_.assign(size_t(rows), std::vector<double>(size_t(tokens), -1.0));
    QSharedPointer<QCPAxisTickerText> y_ticks(new QCPAxisTickerText);
    for (int r = 0; r < rows; ++r) {
        const SiteRouting& s = trace_.sites[size_t(row_sites_[size_t(r)])];
        for (int t = 0; t < tokens; ++t) cells_[size_t(r)][size_t(t)] = topExpert(s, t);
        y_ticks->addTick(r, shortSiteName(s));
    }
    setTokenAxis(tokens);
    fillMap(rows, tokens);
    plot_->yAxis->setTicker(y_ticks);
    plot_->yAxis->setLabel(scope_ == Scope::SameKind ? tr("layer") : tr("module"));
    QCPColorGradient gradient = expertGradient(experts);
    gradient.setNanHandling(QCPColorGradient::nhTransparent);
    map_->setGradient(gradient);
    map_->setDataRange(expertDataRange(experts));
    QSharedPointer<QCPAxisTickerText> names(new QCPAxisTickerText);
    if (experts <= kScaleNames) {
        for (int e = 0; e < experts; ++e)
            names->addTick(e, QString::fromStdString(trace_.expert_names[size_t(e)]));
        scale_->axis()->setLabel(tr("top-1 expert"));
    } else {
        std::vector<int> count(size_t(experts), 0);
        for (const auto& row : cells_)
            for (double v : row)
                if (v >= 0) ++count[size_t(v)];
        std::vector<ExpertLegend::Entry> entries;
        for (int e = 0; e < experts; ++e)
            if (count[size_t(e)] > 0)
                entries.push_back(
                    {e, QString::fromStdString(trace_.expert_names[size_t(e)]), count[size_t(e)]});
        legend_->setEntries(entries, tr("cells"));
        legend_->setVisible(true);
        scale_->setVisible(false);  // a strip of 166 unnamed bands says nothing the legend does not
    }
    scale_->axis()->setTicker(names);
    const QString what = scope_ == Scope::SameKind
                             ? tr("%1 in every layer").arg(shortSiteName(current).section(' ', 1))
                             : tr("every module");
    title_->setText(tr("Top-1 expert of every %1 token: %2").arg(streamName(stream_), what));
}

void RoutingHeatmap::placeSelection() {
    const int tokens = token_labels_.size();
    const bool show = selected_ >= 0 && selected_ < tokens && !cells_.empty();
    selection_->setVisible(show);
    const double rows = double(cells_.size());
    if (show) {
        selection_->topLeft->setCoords(selected_ - 0.5, rows - 0.5);
        selection_->bottomRight->setCoords(selected_ + 0.5, -0.5);
    }
    const auto row = std::find(row_sites_.begin(), row_sites_.end(), site_);
    current_row_->setVisible(mode_ == Mode::TopExpert && row != row_sites_.end());
    const double r = double(row - row_sites_.begin());
    current_row_->topLeft->setCoords(-0.5, r + 0.5);
    current_row_->bottomRight->setCoords(tokens - 0.5, r - 0.5);
}

const SiteRouting* RoutingHeatmap::siteOfRow(int row) const {
    if (mode_ == Mode::ExpertWeights) return site_ >= 0 ? &trace_.sites[size_t(site_)] : nullptr;
    if (row < 0 || row >= int(row_sites_.size())) return nullptr;
    return &trace_.sites[size_t(row_sites_[size_t(row)])];
}

QString RoutingHeatmap::describeCell(int token, int row) const {
    const SiteRouting* site = siteOfRow(row);
    if (!site) return QString();
    QString text = tr("token '%1' (%2 #%3)\nmodule %4\nkept: %5")
                       .arg(tokenPiece(trace_, stream_, token), streamName(stream_))
                       .arg(token)
                       .arg(QString::fromStdString(site->site), keptSummary(trace_, *site, token));
    if (mode_ == Mode::ExpertWeights && row >= 0 && row < int(row_experts_.size()))
        text += tr("\n%1: weight %2")
                    .arg(QString::fromStdString(trace_.expert_names[size_t(row_experts_[size_t(row)])]))
                    .arg(cells_[size_t(row)][size_t(token)], 0, 'f', 3);
    return text;
}

QPoint RoutingHeatmap::cellCentre(int token, int row) const {
    return QPoint(int(plot_->xAxis->coordToPixel(token)), int(plot_->yAxis->coordToPixel(row)));
}

bool RoutingHeatmap::cellAt(const QPointF& pixel, int* token, int* row) const {
    if (cells_.empty() || !plot_->axisRect()->rect().contains(pixel.toPoint())) return false;
    *token = int(std::lround(plot_->xAxis->pixelToCoord(pixel.x())));
    *row = int(std::lround(plot_->yAxis->pixelToCoord(pixel.y())));
    return *token >= 0 && *token < token_labels_.size() && *row >= 0 && *row < int(cells_.size());
}

void RoutingHeatmap::hover(QMouseEvent* event) {
    int token = 0, row = 0;
    if (cellAt(event->position(), &token, &row))
        QToolTip::showText(event->globalPosition().toPoint(), describeCell(token, row), plot_);
    else
        QToolTip::hideText();
}

void RoutingHeatmap::click(QMouseEvent* event) {
    int token = 0, row = 0;
    if (event->button() != Qt::LeftButton || !cellAt(event->position(), &token, &row)) return;
    selectToken(token);
    if (mode_ == Mode::TopExpert)
        Q_EMIT moduleSelected(QString::fromStdString(trace_.sites[size_t(row_sites_[size_t(row)])].site));
    Q_EMIT tokenSelected(stream_ == TokenStream::Decoder, token);
}

}  // namespace phatgoose::ui
