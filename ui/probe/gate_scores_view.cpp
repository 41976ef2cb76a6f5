#include "ui/probe/gate_scores_view.h"

#include <QHBoxLayout>
#include <QScrollBar>
#include <QSplitter>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <map>

#include "ui/plot/expert_legend.h"
#include "ui/plot/expert_palette.h"
#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/probe/trace_queries.h"

namespace phatgoose::ui {
namespace {

const QColor kKept(230, 120, 20);
const QColor kNotKept(150, 170, 195);

QCPBars* addBars(QCustomPlot* plot, const QString& name, const QColor& colour) {
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    bars->setName(name);
    bars->setBrush(colour);
    bars->setPen(QPen(colour.darker(130)));
    bars->setWidth(0.7);
    return bars;
}

}  // namespace

GateScoresView::GateScoresView(QWidget* parent)
    : QWidget(parent),
      scores_plot_(new QCustomPlot(this)),
      scroll_(new QScrollBar(Qt::Horizontal, this)),
      legend_(new ExpertLegend(this)),
      modules_plot_(new QCustomPlot(this)) {
    auto* top = new QWidget(this);
    auto* top_layout = new QVBoxLayout(top);
    top_layout->setContentsMargins(0, 0, 0, 0);
    top_layout->setSpacing(0);
    top_layout->addWidget(scores_plot_, 1);
    top_layout->addWidget(scroll_);
    scroll_->setToolTip(tr("More experts, in order of score"));
    auto* bottom = new QWidget(this);
    auto* bottom_layout = new QHBoxLayout(bottom);
    bottom_layout->setContentsMargins(0, 0, 0, 0);
    bottom_layout->addWidget(modules_plot_, 1);
    bottom_layout->addWidget(legend_);
    legend_->setToolTip(tr("The top-1 experts of the modules below, with how many modules each won"));
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(top);
    split->addWidget(bottom);
    connect(scroll_, &QScrollBar::valueChanged, this, &GateScoresView::scrollScores);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(split);
    scores_title_ = addPlotTitle(scores_plot_);
    modules_title_ = addPlotTitle(modules_plot_);
    placeLegendAbove(scores_plot_);
    modules_plot_->xAxis->setTickLabelRotation(90);
    modules_plot_->xAxis->setTickLabelFont(QFont(font().family(), 7));
    scores_plot_->xAxis->setTickLabelRotation(45);
    for (QCustomPlot* p : {scores_plot_, modules_plot_})
        p->xAxis->grid()->setVisible(false);  // bars, not a scale
    addPlotExportMenu(scores_plot_, "gate_scores");
    addPlotExportMenu(modules_plot_, "top_expert_per_module");
    clear();
}

void GateScoresView::setTrace(const phatgoose::RoutingTrace& trace) {
    trace_ = trace;
    clear();
}

void GateScoresView::clear() {
    for (QCustomPlot* p : {scores_plot_, modules_plot_}) {
        p->clearPlottables();
        p->clearItems();
        p->legend->setVisible(false);
    }
    bars_.clear();
    highlighted_.clear();
    order_.clear();
    module_sites_.clear();
    module_top_.clear();
    shown_token_ = -1;
    scroll_->setVisible(false);
    legend_->setEntries({}, QString());
    legend_->setVisible(false);
    scores_title_->setText(QString());
    modules_title_->setText(QString());
    setPlotHint(scores_plot_,
                tr("Select a token (click the heatmap or a token chip) to see its expert scores"));
    setPlotHint(modules_plot_, tr("...and here its top-1 expert at every module"));
    scores_plot_->replot();
    modules_plot_->replot();
}

void GateScoresView::showToken(const QString& site_name, int token) {
    const SiteRouting* site = trace_.find(site_name.toStdString());
    if (!site || token < 0 || token >= site->tokens) {
        clear();
        return;
    }
    shown_site_ = site_name;
    shown_token_ = token;
    setPlotHint(scores_plot_, QString());
    setPlotHint(modules_plot_, QString());
    drawScores(*site, token);
    drawModules(*site, token);
}

void GateScoresView::setExpertFilter(const QString& text) {
    filter_ = text.trimmed();
    if (shown_token_ >= 0) showToken(shown_site_, shown_token_);
}

void GateScoresView::scrollScores(int first) {
    scores_plot_->xAxis->setRange(first - 0.6, first + kVisibleBars - 0.4);
    scores_plot_->replot();
}

void GateScoresView::drawScores(const SiteRouting& site, int token) {
    QCustomPlot* p = scores_plot_;
    p->clearPlottables();
    const std::vector<int> kept = keptExperts(site, token);
    highlighted_ = std::set<int>(kept.begin(), kept.end());
    bars_ = scoresAt(trace_, site, token);
    shows_scores_ = !bars_.empty();
    if (!shows_scores_) {  // single and retrieval choose per example: only the kept weight exists
        bars_.assign(trace_.expert_names.size(), std::nan(""));
        const std::vector<double> w = keptWeights(site, token);
        for (size_t j = 0; j < kept.size(); ++j) bars_[size_t(kept[j])] = w[j];
    }
    QCPBars* on = addBars(p, tr("kept (top-%1)").arg(site.k), kKept);
    QCPBars* off = addBars(p, tr("not kept"), kNotKept);
    // Highest first (experts without a bar last, in library order), narrowed by the name filter.
    order_.clear();
    for (int e = 0; e < int(bars_.size()); ++e)
        if (filter_.isEmpty() ||
            QString::fromStdString(trace_.expert_names[size_t(e)]).contains(filter_, Qt::CaseInsensitive))
            order_.push_back(e);
    std::stable_sort(order_.begin(), order_.end(), [this](int a, int b) {
        const double va = bars_[size_t(a)], vb = bars_[size_t(b)];
        if (std::isnan(va) || std::isnan(vb)) return !std::isnan(va) && std::isnan(vb);
        return va > vb;
    });
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    QCPRange values(0, 0);
    for (int x = 0; x < int(order_.size()); ++x) {
        const int e = order_[size_t(x)];
        ticks->addTick(x, QString::fromStdString(trace_.expert_names[size_t(e)]));
        if (std::isnan(bars_[size_t(e)])) continue;
        (highlighted_.count(e) ? on : off)->addData(x, bars_[size_t(e)]);
        values.expand(bars_[size_t(e)]);
    }
    p->xAxis->setTicker(ticks);
    const int shown = std::min<int>(kVisibleBars, int(order_.size()));
    p->xAxis->setRange(-0.6, double(std::max(shown, 1)) - 0.4);
    {
        const QSignalBlocker block(scroll_);
        scroll_->setRange(0, std::max(0, int(order_.size()) - kVisibleBars));
        scroll_->setPageStep(kVisibleBars);
        scroll_->setValue(0);
    }
    scroll_->setVisible(int(order_.size()) > kVisibleBars);
    const double pad = 0.08 * std::max(values.size(), 1e-3);
    p->yAxis->setRange(values.lower - (values.lower < 0 ? pad : 0), values.upper + pad);
    p->yAxis->setLabel(shows_scores_ ? tr("router score") : tr("routing weight"));
    p->legend->setVisible(true);
    const QString piece = tokenPiece(trace_, streamOf(site), token);
    scores_title_->setText(shows_scores_
                               ? tr("Scores of every expert for '%1' (%2 #%3) at %4")
                                     .arg(piece, streamName(streamOf(site)))
                                     .arg(token)
                                     .arg(shortSiteName(site))
                               : tr("'%1' at %2 (%3 records no scores: kept weights)")
                                     .arg(piece, shortSiteName(site), QString::fromStdString(trace_.method)));
    p->replot();
}

void GateScoresView::drawModules(const SiteRouting& site, int token) {
    QCustomPlot* p = modules_plot_;
    p->clearPlottables();
    p->clearItems();
    module_sites_ = sitesOfStream(trace_, streamOf(site), std::string());
    module_top_.clear();
    for (int site : module_sites_) module_top_.push_back(topExpert(trace_.sites[size_t(site)], token));
    // One bar series per expert; the legend beside the plot names them, most modules first.
    std::map<int, QCPBars*> by_expert;
    std::map<int, int> wins;
    for (int top : module_top_)
        if (top >= 0) ++wins[top];
    std::vector<ExpertLegend::Entry> entries;
    for (const auto& [top, count] : wins) {
        by_expert[top] =
            addBars(p, QString::fromStdString(trace_.expert_names[size_t(top)]), expertColor(top));
        entries.push_back({top, QString::fromStdString(trace_.expert_names[size_t(top)]), count});
    }
    legend_->setEntries(entries, tr("modules"));
    legend_->setVisible(!entries.empty());
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int i = 0; i < int(module_sites_.size()); ++i) {
        const SiteRouting& s = trace_.sites[size_t(module_sites_[size_t(i)])];
        ticks->addTick(i, shortSiteName(s));
        const int top = module_top_[size_t(i)];
        if (top < 0) continue;
        by_expert[top]->addData(i, keptWeights(s, token).front());
        if (&s == &site) {  // outline the module shown above
            auto* mark = new QCPItemRect(p);
            mark->setPen(QPen(Qt::black, 1.5, Qt::DashLine));
            mark->topLeft->setCoords(i - 0.5, 1.04);
            mark->bottomRight->setCoords(i + 0.5, 0);
        }
    }
    p->xAxis->setTicker(ticks);
    p->xAxis->setRange(-0.6, double(module_sites_.size()) - 0.4);
    p->yAxis->setRange(0, 1.08);
    p->yAxis->setLabel(tr("top-1 weight"));
    p->legend->setVisible(false);
    modules_title_->setText(tr("Top-1 expert of '%1' at every %2 module")
                                .arg(tokenPiece(trace_, streamOf(site), token), streamName(streamOf(site))));
    p->replot();
}

}  // namespace phatgoose::ui
