#pragma once
// Where two routings disagree, for one token stream: tokens x modules, each cell 1 - Jaccard of the two kept
// expert sets (0: the same experts, 1: none in common). Hovering a cell shows both kept sets.
#include <QWidget>

#include "routing/routing_trace.h"
#include "ui/probe/routing_difference.h"
#include "ui/probe/trace_queries.h"

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPTextElement;
class QCPItemText;
class QMouseEvent;

namespace phatgoose::ui {

class DifferenceHeatmap : public QWidget {
    Q_OBJECT
public:
    DifferenceHeatmap(TokenStream stream, QWidget* parent = nullptr);
    void setDifference(const RoutingDifference& difference, const phatgoose::RoutingTrace& a,
                       const phatgoose::RoutingTrace& b);
    QCustomPlot* plot() const { return plot_; }
    // [rows][tokens], NaN where a module has no such token; rows are indices into difference.modules.
    const std::vector<std::vector<double>>& cells() const { return cells_; }
    const std::vector<int>& rowModules() const { return row_modules_; }
    QString describeCell(int token, int row) const;

private:
    void hover(QMouseEvent* event);
    TokenStream stream_;
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    QCPTextElement* title_;
    QCPItemText* message_;
    RoutingDifference difference_;
    phatgoose::RoutingTrace a_, b_;
    std::vector<std::vector<double>> cells_;
    std::vector<int> row_modules_;
};

}  // namespace phatgoose::ui
