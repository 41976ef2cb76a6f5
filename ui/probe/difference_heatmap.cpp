#include "ui/probe/difference_heatmap.h"

#include <QMouseEvent>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {
namespace {

QCPColorGradient agreementGradient() {
    QCPColorGradient g;
    g.setColorStops({{0.0, QColor(245, 245, 245)}, {0.5, QColor(250, 170, 90)}, {1.0, QColor(180, 20, 30)}});
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}

}  // namespace

DifferenceHeatmap::DifferenceHeatmap(TokenStream stream, QWidget* parent)
    : QWidget(parent), stream_(stream), plot_(new QCustomPlot(this)) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    const ColorMapWithScale parts = addColorMapWithScale(plot_);
    map_ = parts.map;
    scale_ = parts.scale;
    title_ = addPlotTitle(plot_, tr("Where the kept experts differ, %1 tokens").arg(streamName(stream)));
    map_->setGradient(agreementGradient());  // after setColorScale, which adopts the scale's gradient
    map_->setDataRange(QCPRange(0, 1));
    scale_->axis()->setLabel(tr("1 - Jaccard of kept experts"));
    plot_->xAxis->setTickLabelRotation(60);
    plot_->xAxis->setLabel(tr("%1 token").arg(streamName(stream)));
    plot_->yAxis->setTickLabelFont(QFont(font().family(), 7));
    message_ = new QCPItemText(plot_);
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, &DifferenceHeatmap::hover);
    addPlotExportMenu(plot_,
                      stream == TokenStream::Decoder ? "decoder_disagreement" : "encoder_disagreement");
    setDifference({}, {}, {});
}

void DifferenceHeatmap::setDifference(const RoutingDifference& difference, const phatgoose::RoutingTrace& a,
                                      const phatgoose::RoutingTrace& b) {
    difference_ = difference;
    a_ = a;
    b_ = b;
    row_modules_.clear();
    const bool decoder = stream_ == TokenStream::Decoder;
    for (int m = 0; m < int(difference.modules.size()); ++m)
        if (difference.modules[size_t(m)].decoder_tokens == decoder) row_modules_.push_back(m);
    const int tokens = decoder ? difference.decoder_tokens : difference.encoder_tokens;
    const int rows = int(row_modules_.size());
    cells_.assign(size_t(rows), std::vector<double>(size_t(tokens), std::nan("")));
    map_->data()->setSize(tokens, rows);
    map_->data()->setRange(cellCentres(tokens), cellCentres(rows));
    QSharedPointer<QCPAxisTickerText> y_ticks(new QCPAxisTickerText), x_ticks(new QCPAxisTickerText);
    for (int r = 0; r < rows; ++r) {
        const ModuleDifference& m = difference.modules[size_t(row_modules_[size_t(r)])];
        for (size_t t = 0; t < m.token_difference.size() && t < size_t(tokens); ++t)
            cells_[size_t(r)][t] = m.token_difference[t];
        for (int t = 0; t < tokens; ++t) map_->data()->setCell(t, r, cells_[size_t(r)][size_t(t)]);
        y_ticks->addTick(r, shortSiteName(a.sites[size_t(m.site_index_a)]));
    }
    for (int t = 0; t < tokens; ++t) x_ticks->addTick(t, tokenPiece(a, stream_, t));
    plot_->xAxis->setTicker(x_ticks);
    plot_->yAxis->setTicker(y_ticks);
    plot_->xAxis->setRange(-0.5, tokens - 0.5);
    plot_->yAxis->setRange(-0.5, rows - 0.5);
    const bool empty = rows == 0 || tokens == 0;
    map_->setVisible(!empty);
    message_->setVisible(empty);
    message_->setText(a.method.empty()
                          ? tr("Run a comparison")
                          : tr("No %1 tokens routed by both configurations").arg(streamName(stream_)));
    plot_->replot();
}

QString DifferenceHeatmap::describeCell(int token, int row) const {
    const ModuleDifference& m = difference_.modules[size_t(row_modules_[size_t(row)])];
    const SiteRouting& sa = a_.sites[size_t(m.site_index_a)];
    const SiteRouting& sb = b_.sites[size_t(m.site_index_b)];
    return tr("token '%1' (%2 #%3)\nmodule %4\nA kept: %5\nB kept: %6\n1 - Jaccard: %7")
        .arg(tokenPiece(a_, stream_, token), streamName(stream_))
        .arg(token)
        .arg(QString::fromStdString(m.site), keptSummary(a_, sa, token), keptSummary(b_, sb, token))
        .arg(cells_[size_t(row)][size_t(token)], 0, 'f', 2);
}

void DifferenceHeatmap::hover(QMouseEvent* event) {
    const QPointF p = event->position();
    const int token = int(std::lround(plot_->xAxis->pixelToCoord(p.x())));
    const int row = int(std::lround(plot_->yAxis->pixelToCoord(p.y())));
    const bool inside = plot_->axisRect()->rect().contains(p.toPoint()) && row >= 0 &&
                        row < int(cells_.size()) && token >= 0 && token < int(cells_[size_t(row)].size()) &&
                        !std::isnan(cells_[size_t(row)][size_t(token)]);
    if (inside)
        QToolTip::showText(event->globalPosition().toPoint(), describeCell(token, row), plot_);
    else
        QToolTip::hideText();
}

}  // namespace phatgoose::ui
