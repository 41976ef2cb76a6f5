#include "ui/experts/expert_table_model.h"

namespace phatgoose::ui {

ExpertTableModel::ExpertTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void ExpertTableModel::setExperts(const QList<ExpertRowView>& experts) {
    beginResetModel();
    experts_ = experts;
    endResetModel();
}

int ExpertTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(experts_.size());
}

int ExpertTableModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ExpertTableModel::raw(const ExpertRowView& e, int column) const {
    switch (column) {
        case Name:
            return e.name;
        case Task:
            return e.task;
        case Rank:
            return e.rank;
        case Alpha:
            return e.alpha;
        case Targets:
            return e.targets.join(' ');
        case Gate:
            return e.has_gate ? QStringLiteral("yes") : QStringLiteral("no");
        case GateLoss:
            return e.has_gate_record ? QVariant(e.gate_loss) : QVariant();
        case TrainingSteps:
            return e.training_steps;
        case Modules:
            return e.modules;
        default:
            return {};
    }
}

QVariant ExpertTableModel::display(const ExpertRowView& e, int column) const {
    switch (column) {
        case Alpha:
            return QString::number(e.alpha, 'g', 6);
        case Targets:
            return e.targets.join(", ");
        case GateLoss:
            return e.has_gate_record ? QString::number(e.gate_loss, 'f', 4) : QString();
        case TrainingSteps:
            return e.training_steps > 0 ? QString::number(e.training_steps) : QString();
        default:
            return raw(e, column);
    }
}

QVariant ExpertTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= experts_.size()) return {};
    const ExpertRowView& e = experts_[index.row()];
    switch (role) {
        case Qt::DisplayRole:
            return display(e, index.column());
        case kRawRole:
            return raw(e, index.column());
        case Qt::ToolTipRole:
            return tr("%1\nfolder: %2\nbase model: %3")
                .arg(e.name, e.folder, e.base_model.isEmpty() ? tr("(not recorded)") : e.base_model);
        case Qt::TextAlignmentRole: {
            const bool number = index.column() == Rank || index.column() == Alpha ||
                                index.column() == GateLoss || index.column() == TrainingSteps ||
                                index.column() == Modules;
            return QVariant::fromValue(
                Qt::Alignment(number ? Qt::AlignRight | Qt::AlignVCenter : Qt::AlignLeft | Qt::AlignVCenter));
        }
        default:
            return {};
    }
}

QVariant ExpertTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* const kTitles[] = {
        QT_TR_NOOP("Name"),      QT_TR_NOOP("Task"),           QT_TR_NOOP("Rank"),
        QT_TR_NOOP("Alpha"),     QT_TR_NOOP("Targets"),        QT_TR_NOOP("Gate"),
        QT_TR_NOOP("Gate loss"), QT_TR_NOOP("Training steps"), QT_TR_NOOP("Modules")};
    return section >= 0 && section < ColumnCount ? tr(kTitles[section]) : QVariant();
}

}  // namespace phatgoose::ui
