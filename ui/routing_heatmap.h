#pragma once
// Experts x tokens for one module: each cell is the routing weight the token gave the expert there
// (QCPColorMap + QCPColorScale). Token pieces label the x axis; encoder and decoder rows are drawn by
// choosing the module (a decoder module's rows are decoder positions, cross-attention k/v's are encoder
// ones).
#include <QWidget>

#include "routing/routing_trace.h"

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;

namespace phatgoose::ui {

class RoutingHeatmap : public QWidget {
    Q_OBJECT
public:
    explicit RoutingHeatmap(QWidget* parent = nullptr);
    void setTrace(const phatgoose::RoutingTrace& trace);
    void showSite(const QString& site);
    QCustomPlot* plot() const { return plot_; }
    // The drawn matrix, [experts][tokens], for tests and export.
    const std::vector<std::vector<double>>& cells() const { return cells_; }
    const QStringList& tokenLabels() const { return token_labels_; }

private:
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    phatgoose::RoutingTrace trace_;
    std::vector<std::vector<double>> cells_;
    QStringList token_labels_;
};

}  // namespace phatgoose::ui
