#include "ui/probe/gate_scores_view.h"

#include <QSplitter>
#include <QVBoxLayout>
#include <cmath>
#include <map>

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
    : QWidget(parent), scores_plot_(new QCustomPlot(this)), modules_plot_(new QCustomPlot(this)) {
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(scores_plot_);
    split->addWidget(modules_plot_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(split);
    scores_title_ = addPlotTitle(scores_plot_);
    modules_title_ = addPlotTitle(modules_plot_);
    placeLegendAbove(scores_plot_);
    placeLegendAbove(modules_plot_);
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
    module_sites_.clear();
    module_top_.clear();
    scores_title_->setText(tr("Select a token (click the heatmap or a token) to see its expert scores"));
    modules_title_->setText(QString());
    scores_plot_->replot();
    modules_plot_->replot();
}

void GateScoresView::showToken(const QString& site_name, int token) {
    const SiteRouting* site = trace_.find(site_name.toStdString());
    if (!site || token < 0 || token >= site->tokens) {
        clear();
        return;
    }
    drawScores(*site, token);
    drawModules(*site, token);
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
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    QCPRange values(0, 0);
    for (int e = 0; e < int(bars_.size()); ++e) {
        ticks->addTick(e, QString::fromStdString(trace_.expert_names[size_t(e)]));
        if (std::isnan(bars_[size_t(e)])) continue;
        (highlighted_.count(e) ? on : off)->addData(e, bars_[size_t(e)]);
        values.expand(bars_[size_t(e)]);
    }
    p->xAxis->setTicker(ticks);
    p->xAxis->setRange(-0.6, double(bars_.size()) - 0.4);
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
    // One bar series per expert, made in library order, so that the legend names the colours in that order.
    std::map<int, QCPBars*> by_expert;
    for (int top : std::set<int>(module_top_.begin(), module_top_.end()))
        if (top >= 0)
            by_expert[top] =
                addBars(p, QString::fromStdString(trace_.expert_names[size_t(top)]), expertColor(top));
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
    p->legend->setVisible(!by_expert.empty());
    modules_title_->setText(tr("Top-1 expert of '%1' at every module that routes %2 tokens")
                                .arg(tokenPiece(trace_, streamOf(site), token), streamName(streamOf(site))));
    p->replot();
}

}  // namespace phatgoose::ui
