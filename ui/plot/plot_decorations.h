#pragma once
// Layout pieces the probing views' plots share: a title row, a legend laid out as a row under it (so that it
// never covers a bar), and the data range that centres a colour map's cells on 0..count-1.
#include <QString>

#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {

// A colour map on the plot's axes, cells drawn as blocks, with its colour scale beside the axis rect and kept
// the same height. Call before addPlotTitle (which inserts a row above both). Set the gradient afterwards:
// the map adopts the scale's gradient when attached.
struct ColorMapWithScale {
    QCPColorMap* map;
    QCPColorScale* scale;
};
ColorMapWithScale addColorMapWithScale(QCustomPlot* plot);

// Inserts a title as the plot layout's first row; call before placeLegendAbove.
QCPTextElement* addPlotTitle(QCustomPlot* plot, const QString& text = {});
// Moves the legend out of the axis rect into a row under the title, its entries side by side.
void placeLegendAbove(QCustomPlot* plot);
// A plot without data: axes hidden and `hint` (one line saying how to get data) in the middle, instead of
// empty 0..5 axes. An empty hint puts the axes back.
void setPlotHint(QCustomPlot* plot, const QString& hint);
QString plotHint(const QCustomPlot* plot);

// QCPColorMapData's key or value range for `count` cells centred on 0..count-1 (one cell: -0.5..0.5, since
// QCustomPlot draws a single cell across the whole range).
QCPRange cellCentres(int count);

}  // namespace phatgoose::ui
