#pragma once
// A matrix of values with a label on every row and column, drawn as a colour map with its scale: the
// datasets x experts routing weights and the datasets x datasets similarity of the Routing analysis tab.
// Row 0 is drawn at the top. Hovering a cell names it; clicking one emits cellClicked.
#include <QStringList>
#include <QWidget>
#include <vector>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPTextElement;
class QMouseEvent;

namespace phatgoose::ui {

class LabeledHeatmap : public QWidget {
    Q_OBJECT
public:
    // `export_name` suggests the file name in the plot's "Save plot as" menu.
    LabeledHeatmap(const QString& export_name, QWidget* parent = nullptr);
    // values[row][column]; colours span [low, high]. An empty matrix shows `hint` instead.
    void setMatrix(const std::vector<std::vector<double>>& values, const QStringList& row_labels,
                   const QStringList& column_labels, double low, double high, const QString& title,
                   const QString& scale_label, const QString& hint = {});
    const std::vector<std::vector<double>>& values() const { return values_; }
    const QStringList& rowLabels() const { return rows_; }
    const QStringList& columnLabels() const { return columns_; }
    QCustomPlot* plot() const { return plot_; }
    // The cell under a widget position of the plot, or {-1, -1}.
    std::pair<int, int> cellAt(const QPointF& position) const;

Q_SIGNALS:
    void cellClicked(int row, int column);

private:
    void hover(QMouseEvent* event);
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    QCPTextElement* title_;
    std::vector<std::vector<double>> values_;
    QStringList rows_, columns_;
};

}  // namespace phatgoose::ui
