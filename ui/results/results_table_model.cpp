#include "ui/results/results_table_model.h"

#include <QDateTime>

namespace phatgoose::ui {

QString methodKey(const QString& method, qint64 top_k) {
    return top_k > 0 ? QStringLiteral("%1 (k=%2)").arg(method).arg(top_k) : method;
}

namespace {

QString localTime(const QString& iso_utc) {
    const QDateTime t = QDateTime::fromString(iso_utc, Qt::ISODateWithMs);
    return t.isValid() ? t.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm")) : iso_utc;
}

bool isNumeric(int column) {
    using C = ResultsTableModel::Column;
    return column == C::Run || column == C::TopK || column == C::Value || column == C::Examples;
}

}  // namespace

void ResultsTableModel::setRows(QList<ResultRow> rows) {
    beginResetModel();
    rows_ = std::move(rows);
    endResetModel();
}

int ResultsTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(rows_.size());
}

int ResultsTableModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ResultsTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rows_.size()) return {};
    const ResultRow& r = rows_.at(index.row());
    switch (role) {
        case Qt::DisplayRole:
            return display(r, index.column());
        case kRawRole:
            return raw(r, index.column());
        case Qt::TextAlignmentRole:
            return isNumeric(index.column()) ? QVariant(Qt::AlignRight | Qt::AlignVCenter) : QVariant();
        case Qt::ToolTipRole:
            return index.column() == Date ? QVariant(r.started_at) : QVariant();
        default:
            return {};
    }
}

QVariant ResultsTableModel::display(const ResultRow& r, int column) const {
    switch (column) {
        case Run:
            return r.run;
        case Date:
            return localTime(r.started_at);
        case Status:
            return r.status;
        case Method:
            return r.method;
        case TopK:
            return r.top_k > 0 ? QString::number(r.top_k) : QStringLiteral("–");
        case Dataset:
            return r.dataset;
        case Role:
            return r.role.isEmpty() ? tr("other") : r.role;
        case Metric:
            return r.metric;
        case Value:
            return QString::number(r.value, 'f', 1);
        case Examples:
            return r.examples;
    }
    return {};
}

QVariant ResultsTableModel::raw(const ResultRow& r, int column) const {
    switch (column) {
        case Run:
            return r.run;
        case Date:
            return r.started_at;
        case TopK:
            return r.top_k;
        case Value:
            return r.value;
        case Examples:
            return r.examples;
        default:
            return display(r, column);
    }
}

QVariant ResultsTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* const names[ColumnCount] = {
        QT_TR_NOOP("run"),       QT_TR_NOOP("date"),    QT_TR_NOOP("status"), QT_TR_NOOP("method"),
        QT_TR_NOOP("k"),         QT_TR_NOOP("dataset"), QT_TR_NOOP("role"),   QT_TR_NOOP("metric"),
        QT_TR_NOOP("value (%)"), QT_TR_NOOP("examples")};
    return section >= 0 && section < ColumnCount ? tr(names[section]) : QVariant();
}

ResultsFilter::ResultsFilter(QObject* parent) : QSortFilterProxyModel(parent) {
    setSortRole(ResultsTableModel::kRawRole);
}

void ResultsFilter::setText(const QString& text) {
    text_ = text.trimmed();
    invalidateFilter();
}

void ResultsFilter::setMethod(const QString& method_key) {
    method_ = method_key;
    invalidateFilter();
}

void ResultsFilter::setDataset(const QString& dataset) {
    dataset_ = dataset;
    invalidateFilter();
}

bool ResultsFilter::filterAcceptsRow(int source_row, const QModelIndex& source_parent) const {
    const auto* model = qobject_cast<const ResultsTableModel*>(sourceModel());
    if (!model || source_parent.isValid()) return true;
    const ResultRow& r = model->row(source_row);
    if (!method_.isEmpty() && methodKey(r.method, r.top_k) != method_) return false;
    if (!dataset_.isEmpty() && r.dataset != dataset_) return false;
    if (text_.isEmpty()) return true;
    for (int c = 0; c < ResultsTableModel::ColumnCount; ++c)
        if (model->index(source_row, c).data().toString().contains(text_, Qt::CaseInsensitive)) return true;
    return false;
}

}  // namespace phatgoose::ui
