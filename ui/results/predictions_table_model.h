#pragma once
// The Results view's drill-down: the per-example predictions of one method on one dataset, and a filter
// that keeps all, only the correct, or only the incorrect ones.
#include <QAbstractTableModel>
#include <QList>
#include <QSortFilterProxyModel>
#include <QString>

namespace phatgoose::ui {

struct PredictionRow {
    qint64 example = 0;  // position in the dataset
    QString input, target, prediction;
    bool correct = false;
    double score = 0.0;  // mean (rank classification) or summed (generation) log-likelihood
};

class PredictionsTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Example, Input, Target, Prediction, Correct, Score, ColumnCount };
    static constexpr int kRawRole = Qt::UserRole;  // raw values for sorting and CSV export

    using QAbstractTableModel::QAbstractTableModel;
    void setRows(QList<PredictionRow> rows);
    const QList<PredictionRow>& rows() const { return rows_; }
    const PredictionRow& row(int index) const { return rows_.at(index); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVariant raw(const PredictionRow& r, int column) const;
    QList<PredictionRow> rows_;
};

class PredictionsFilter : public QSortFilterProxyModel {
    Q_OBJECT
public:
    enum class Outcome { All, Correct, Incorrect };
    explicit PredictionsFilter(QObject* parent = nullptr);
    void setOutcome(Outcome outcome);
    Outcome outcome() const { return outcome_; }

protected:
    bool filterAcceptsRow(int source_row, const QModelIndex& source_parent) const override;

private:
    Outcome outcome_ = Outcome::All;
};

}  // namespace phatgoose::ui
