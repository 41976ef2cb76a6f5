#include "ui/routing_heatmap.h"

#include <QVBoxLayout>
#include "ui/qcustomplot_include.h"

namespace phatgoose::ui {

RoutingHeatmap::RoutingHeatmap(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
    scale_ = new QCPColorScale(plot_);
    plot_->plotLayout()->addElement(0, 1, scale_);
    scale_->setType(QCPAxis::atRight);
    scale_->axis()->setLabel(tr("routing weight"));
    map_->setColorScale(scale_);
    map_->setGradient(QCPColorGradient(QCPColorGradient::gpThermal));
    map_->setInterpolate(false);
    auto* margins = new QCPMarginGroup(plot_);
    plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale_->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    plot_->xAxis->setTickLabelRotation(60);
    plot_->xAxis->setLabel(tr("token"));
    plot_->yAxis->setLabel(tr("expert"));
}

void RoutingHeatmap::setTrace(const phatgoose::RoutingTrace& trace) {
    trace_ = trace;
    if (!trace_.sites.empty()) showSite(QString::fromStdString(trace_.sites.front().site));
}

void RoutingHeatmap::showSite(const QString& site_name) {
    const SiteRouting* site = trace_.find(site_name.toStdString());
    if (!site) return;
    const auto& pieces = site->decoder_tokens ? trace_.decoder_pieces : trace_.encoder_pieces;
    const int tokens = int(site->tokens), experts = int(trace_.expert_names.size());
    cells_.assign(size_t(experts), std::vector<double>(size_t(tokens), 0.0));
    for (int t = 0; t < tokens; ++t)
        for (int j = 0; j < site->k; ++j)
            cells_[size_t(site->experts[size_t(t * site->k + j)])][size_t(t)] =
                site->weights[size_t(t * site->k + j)];
    map_->data()->setSize(tokens, experts);
    map_->data()->setRange(QCPRange(0, tokens - 1), QCPRange(0, experts - 1));
    for (int t = 0; t < tokens; ++t)
        for (int e = 0; e < experts; ++e) map_->data()->setCell(t, e, cells_[size_t(e)][size_t(t)]);
    map_->setDataRange(QCPRange(0, 1));

    token_labels_.clear();
    QSharedPointer<QCPAxisTickerText> x_ticks(new QCPAxisTickerText);
    for (int t = 0; t < tokens; ++t) {
        const QString piece =
            t < int(pieces.size()) ? QString::fromStdString(pieces[size_t(t)]) : QString("#%1").arg(t);
        token_labels_ << piece;
        x_ticks->addTick(t, piece);
    }
    QSharedPointer<QCPAxisTickerText> y_ticks(new QCPAxisTickerText);
    for (int e = 0; e < experts; ++e)
        y_ticks->addTick(e, QString::fromStdString(trace_.expert_names[size_t(e)]));
    plot_->xAxis->setTicker(x_ticks);
    plot_->yAxis->setTicker(y_ticks);
    plot_->xAxis->setRange(-0.5, tokens - 0.5);
    plot_->yAxis->setRange(-0.5, experts - 0.5);
    plot_->xAxis->setLabel(site->decoder_tokens ? tr("decoder token") : tr("encoder token"));
    plot_->plotLayout()->setRowSpacing(0);
    plot_->replot();
}

}  // namespace phatgoose::ui
