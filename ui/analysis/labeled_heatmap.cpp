#include "ui/analysis/labeled_heatmap.h"

#include <QMouseEvent>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {

LabeledHeatmap::LabeledHeatmap(const QString& export_name, QWidget* parent)
    : QWidget(parent), plot_(new QCustomPlot(this)) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    const ColorMapWithScale parts = addColorMapWithScale(plot_);
    map_ = parts.map;
    scale_ = parts.scale;
    title_ = addPlotTitle(plot_);
    QCPColorGradient gradient(QCPColorGradient::gpThermal);
    gradient.setNanHandling(QCPColorGradient::nhTransparent);
    map_->setGradient(gradient);
    plot_->xAxis->setTickLabelRotation(45);
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, &LabeledHeatmap::hover);
    connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* event) {
        const auto [row, column] = cellAt(event->position());
        if (row >= 0) Q_EMIT cellClicked(row, column);
    });
    addPlotExportMenu(plot_, export_name);
    setMatrix({}, {}, {}, 0.0, 1.0, {}, {});
}

void LabeledHeatmap::setMatrix(const std::vector<std::vector<double>>& values, const QStringList& row_labels,
                               const QStringList& column_labels, double low, double high,
                               const QString& title, const QString& scale_label, const QString& hint) {
    values_ = values;
    rows_ = row_labels;
    columns_ = column_labels;
    const int rows = int(values.size()), columns = rows ? int(values.front().size()) : 0;
    map_->data()->setSize(columns, rows);
    map_->data()->setRange(cellCentres(columns), cellCentres(rows));
    QSharedPointer<QCPAxisTickerText> x_ticks(new QCPAxisTickerText), y_ticks(new QCPAxisTickerText);
    for (int r = 0; r < rows; ++r) {
        const int y = rows - 1 - r;  // row 0 at the top
        for (int c = 0; c < columns; ++c) map_->data()->setCell(c, y, values[size_t(r)][size_t(c)]);
        y_ticks->addTick(y, r < row_labels.size() ? row_labels[r] : QString());
    }
    for (int c = 0; c < columns; ++c)
        x_ticks->addTick(c, c < column_labels.size() ? column_labels[c] : QString());
    plot_->xAxis->setTicker(x_ticks);
    plot_->yAxis->setTicker(y_ticks);
    plot_->xAxis->setRange(-0.5, columns - 0.5);
    plot_->yAxis->setRange(-0.5, rows - 0.5);
    map_->setDataRange(QCPRange(low, high));
    scale_->axis()->setLabel(scale_label);
    title_->setText(title);
    const bool empty = rows == 0 || columns == 0;
    map_->setVisible(!empty);
    scale_->setVisible(!empty);
    setPlotHint(plot_, empty ? hint : QString());
    plot_->replot();
}

std::pair<int, int> LabeledHeatmap::cellAt(const QPointF& position) const {
    if (!plot_->axisRect()->rect().contains(position.toPoint()) || values_.empty()) return {-1, -1};
    const int column = int(std::lround(plot_->xAxis->pixelToCoord(position.x())));
    const int y = int(std::lround(plot_->yAxis->pixelToCoord(position.y())));
    const int row = int(values_.size()) - 1 - y;
    if (row < 0 || row >= int(values_.size()) || column < 0 || column >= int(values_[size_t(row)].size()))
        return {-1, -1};
    return {row, column};
}

void LabeledHeatmap::hover(QMouseEvent* event) {
    const auto [row, column] = cellAt(event->position());
    if (row < 0) return QToolTip::hideText();
    QToolTip::showText(event->globalPosition().toPoint(),
                       tr("%1\n%2\n%3")
                           .arg(rows_.value(row), columns_.value(column))
                           .arg(values_[size_t(row)][size_t(column)], 0, 'f', 3),
                       plot_);
}

}  // namespace phatgoose::ui
