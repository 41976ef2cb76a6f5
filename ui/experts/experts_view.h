#pragma once
// The Experts tab: the expert library as a sortable table with a filter box (name, task or any column) and
// counts, and, for the selected expert, its recorded expert-training and gate-training loss curves. The
// table exports to CSV (the rows shown), the plot to PNG and PDF.
#include <QList>
#include <QWidget>

#include "ui/engine_messages.h"

class QCustomPlot;
class QLabel;
class QLineEdit;
class QCPTextElement;
class QSortFilterProxyModel;
class QTableView;

namespace phatgoose::ui {

class ExpertTableModel;

class ExpertsView : public QWidget {
    Q_OBJECT
public:
    explicit ExpertsView(QWidget* parent = nullptr);

    void setExperts(const QList<phatgoose::ui::ExpertRowView>& experts);
    const QList<ExpertRowView>& experts() const;
    QStringList selectedExperts() const;
    bool selectExpert(const QString& name);  // false when there is no such expert

    QTableView* table() const { return table_; }
    QLineEdit* filterBox() const { return filter_; }
    // Rows shown through the filter, and the count line ("12 of 166 experts shown · 160 with a gate").
    int shownCount() const;
    QString countText() const;
    void setFilter(const QString& text);
    QCustomPlot* plot() const { return plot_; }

    // The table as shown (sorted), with plain values; false with a message in `error` when unwritable.
    bool exportCsv(const QString& file, QString* error = nullptr) const;
    bool savePlot(const QString& file);  // .png or .pdf

Q_SIGNALS:
    void expertsShown(int count);
    void trainGatesRequested(const QStringList& experts);
    void trainExpertRequested();

protected:
    void showEvent(QShowEvent* event) override;

private:
    void showCurves();
    void replotWhenShown();
    void showTableMenu(const QPoint& at);
    void showPlotMenu(const QPoint& at);
    void askExportCsv();
    void askSavePlot(const QString& format);
    void updateCounts();

    ExpertTableModel* model_;
    QSortFilterProxyModel* sorted_;
    QTableView* table_;
    QLineEdit* filter_;
    QLabel* counts_;
    QCustomPlot* plot_;
    QCPTextElement* title_;
};

}  // namespace phatgoose::ui
