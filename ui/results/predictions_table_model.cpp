#include "ui/results/predictions_table_model.h"

#include <QBrush>
#include <QColor>

namespace phatgoose::ui {

void PredictionsTableModel::setRows(QList<PredictionRow> rows) {
    beginResetModel();
    rows_ = std::move(rows);
    endResetModel();
}

int PredictionsTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(rows_.size());
}

int PredictionsTableModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant PredictionsTableModel::raw(const PredictionRow& r, int column) const {
    switch (column) {
        case Example:
            return r.example;
        case Input:
            return r.input;
        case Target:
            return r.target;
        case Prediction:
            return r.prediction;
        case Correct:
            return r.correct;
        case Score:
            return r.score;
    }
    return {};
}

QVariant PredictionsTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rows_.size()) return {};
    const PredictionRow& r = rows_.at(index.row());
    const int column = index.column();
    switch (role) {
        case Qt::DisplayRole:
            if (column == Correct) return r.correct ? tr("yes") : tr("no");
            if (column == Score) return QString::number(r.score, 'f', 3);
            return raw(r, column);
        case kRawRole:
            return raw(r, column);
        case Qt::ToolTipRole:  // inputs are often longer than the column
            return column == Input || column == Target || column == Prediction ? raw(r, column) : QVariant();
        case Qt::BackgroundRole:
            if (column != Correct) return {};
            return QBrush(r.correct ? QColor(0xd9, 0xf2, 0xdc) : QColor(0xf9, 0xdc, 0xdc));
        case Qt::TextAlignmentRole:
            return column == Example || column == Score ? QVariant(Qt::AlignRight | Qt::AlignVCenter)
                                                        : QVariant();
        default:
            return {};
    }
}

QVariant PredictionsTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* const names[ColumnCount] = {QT_TR_NOOP("#"),       QT_TR_NOOP("input"),
                                                   QT_TR_NOOP("target"),  QT_TR_NOOP("prediction"),
                                                   QT_TR_NOOP("correct"), QT_TR_NOOP("score")};
    return section >= 0 && section < ColumnCount ? tr(names[section]) : QVariant();
}

PredictionsFilter::PredictionsFilter(QObject* parent) : QSortFilterProxyModel(parent) {
    setSortRole(PredictionsTableModel::kRawRole);
}

void PredictionsFilter::setOutcome(Outcome outcome) {
    outcome_ = outcome;
    invalidateFilter();
}

bool PredictionsFilter::filterAcceptsRow(int source_row, const QModelIndex& source_parent) const {
    const auto* model = qobject_cast<const PredictionsTableModel*>(sourceModel());
    if (!model || source_parent.isValid() || outcome_ == Outcome::All) return true;
    return model->row(source_row).correct == (outcome_ == Outcome::Correct);
}

}  // namespace phatgoose::ui
