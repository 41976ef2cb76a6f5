#pragma once
// Accuracy per dataset per routing method as a grouped bar chart (QCPBarsGroup, one QCPBars per method):
// datasets along x with their names as tick labels, held-in first, then held-out ones on a shaded band,
// then the held-in and held-out averages (each dataset counts once, as the paper averages).
#include <QList>
#include <QString>
#include <QStringList>
#include <QWidget>

#include "ui/results/results_table_model.h"

class QCustomPlot;
class QCPBars;
class QCPBarsGroup;
class QCPTextElement;
class QMouseEvent;

namespace phatgoose::ui {

struct AccuracyGroup {
    QString label;          // a dataset name, or "held-out avg"
    bool held_out = false;  // a held-out dataset or the held-out average
    bool average = false;
    QList<double> values;  // one per method of AccuracyChartData::methods; NaN where the method has none
};

struct AccuracyChartData {
    QString title;
    QStringList methods;  // methodKey()s, in the order the run asked for them
    QList<AccuracyGroup> groups;
};

// The chart's content for metric rows (normally one run's): where rows of several runs name the same
// method and dataset, the latest run's value is kept.
AccuracyChartData accuracyChartData(const QList<ResultRow>& rows, const QString& title);

class AccuracyChart : public QWidget {
    Q_OBJECT
public:
    explicit AccuracyChart(QWidget* parent = nullptr);
    void showData(const AccuracyChartData& data);
    const AccuracyChartData& data() const { return data_; }
    QCustomPlot* plot() const { return plot_; }
    QCPBars* bars(const QString& method_key) const;  // nullptr when the method is not shown
    int barSeriesCount() const { return int(bars_.size()); }
    QStringList tickLabels() const;

    // The chart as a file: PDF for a .pdf suffix, else PNG. Throws phatgoose::Error naming the file.
    void save(const QString& file) const;

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void clearPlot();
    void drawHeldOutBands();
    void drawAverageSeparator();
    void markZeroValues(double bar_width);
    void fitToWidth(int plot_width);
    void setTicks(int plot_width);
    void showValueAt(QMouseEvent* event);
    void showEmptyMessage();

    QCustomPlot* plot_;
    QCPBarsGroup* group_ = nullptr;
    QCPTextElement* title_ = nullptr;
    QList<QCPBars*> bars_;
    AccuracyChartData data_;
};

}  // namespace phatgoose::ui
