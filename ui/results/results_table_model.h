#pragma once
// The Results view's metrics table: one row per stored metric (run x method x dataset), and the filter
// in front of it (free text, method, dataset). Display text is formatted; ResultsTableModel::kRawRole gives
// the raw values, which sorting and CSV export use so that numbers sort and export as numbers.
#include <QAbstractTableModel>
#include <QList>
#include <QSortFilterProxyModel>
#include <QString>

namespace phatgoose::ui {

struct ResultRow {
    qint64 run = 0;
    QString started_at;  // ISO 8601, UTC, as stored
    QString status;      // "finished", "cancelled", ...
    QString method;      // the label the run was asked with: "phatgoose", "single:count"
    qint64 top_k = 0;    // 0 for methods without k
    QString dataset;
    QString role;  // "held-in", "held-out", or empty for a dataset outside the workspace's tasks
    QString metric;
    double value = 0.0;  // percent
    qint64 examples = 0;
};

// "phatgoose (k=2)", "merge": how a method is named in the table's filters and the chart's legend.
QString methodKey(const QString& method, qint64 top_k);

class ResultsTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Run, Date, Status, Method, TopK, Dataset, Role, Metric, Value, Examples, ColumnCount };
    static constexpr int kRawRole = Qt::UserRole;

    using QAbstractTableModel::QAbstractTableModel;
    void setRows(QList<ResultRow> rows);
    const QList<ResultRow>& rows() const { return rows_; }
    const ResultRow& row(int index) const { return rows_.at(index); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVariant display(const ResultRow& r, int column) const;
    QVariant raw(const ResultRow& r, int column) const;
    QList<ResultRow> rows_;
};

// Rows whose method key and dataset equal the chosen ones (empty: any) and whose cells contain the text.
class ResultsFilter : public QSortFilterProxyModel {
    Q_OBJECT
public:
    explicit ResultsFilter(QObject* parent = nullptr);
    void setText(const QString& text);
    void setMethod(const QString& method_key);
    void setDataset(const QString& dataset);

protected:
    bool filterAcceptsRow(int source_row, const QModelIndex& source_parent) const override;

private:
    QString text_, method_, dataset_;
};

}  // namespace phatgoose::ui
