#include "ui/plot/plot_decorations.h"

namespace phatgoose::ui {

ColorMapWithScale addColorMapWithScale(QCustomPlot* plot) {
    auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
    map->setInterpolate(false);
    auto* scale = new QCPColorScale(plot);
    plot->plotLayout()->addElement(0, 1, scale);
    map->setColorScale(scale);
    auto* margins = new QCPMarginGroup(plot);
    plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    return {map, scale};
}

QCPTextElement* addPlotTitle(QCustomPlot* plot, const QString& text) {
    plot->plotLayout()->insertRow(0);
    auto* title = new QCPTextElement(plot, text, QFont(plot->font().family(), 9, QFont::Bold));
    plot->plotLayout()->addElement(0, 0, title);
    return title;
}

void placeLegendAbove(QCustomPlot* plot) {
    plot->legend->setVisible(true);
    plot->axisRect()->insetLayout()->take(plot->legend);
    plot->plotLayout()->insertRow(1);
    plot->plotLayout()->addElement(1, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(1, 0.001);
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot->legend->setWrap(8);
    plot->legend->setBorderPen(Qt::NoPen);
    plot->legend->setFont(QFont(plot->font().family(), 8));
    plot->legend->setMargins(QMargins(4, 0, 4, 0));
}

namespace {

QCPItemText* hintItem(const QCustomPlot* plot) {
    for (int i = 0; i < plot->itemCount(); ++i)
        if (auto* text = qobject_cast<QCPItemText*>(plot->item(i)); text && text->objectName() == "plotHint")
            return text;
    return nullptr;
}

}  // namespace

void setPlotHint(QCustomPlot* plot, const QString& hint) {
    QCPItemText* text = hintItem(plot);
    if (!text) {
        text = new QCPItemText(plot);
        text->setObjectName("plotHint");
        text->position->setType(QCPItemPosition::ptAxisRectRatio);
        text->position->setCoords(0.5, 0.5);
        text->setColor(QColor(0x60, 0x60, 0x60));
        text->setClipToAxisRect(false);
    }
    text->setText(hint);
    text->setVisible(!hint.isEmpty());
    for (QCPAxis* axis : {plot->xAxis, plot->yAxis}) axis->setVisible(hint.isEmpty());
}

QString plotHint(const QCustomPlot* plot) {
    const QCPItemText* text = hintItem(plot);
    return text && text->visible() ? text->text() : QString();
}

QCPRange cellCentres(int count) {
    return count > 1 ? QCPRange(0, count - 1) : QCPRange(-0.5, 0.5);
}

}  // namespace phatgoose::ui
