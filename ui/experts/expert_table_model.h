#pragma once
// The expert library as a table: one row per expert, the columns of ExpertLibrary::listing(). Display
// text is formatted for people; kRawRole gives the plain value, for sorting and for export.
#include <QAbstractTableModel>
#include <QList>

#include "ui/engine_messages.h"

namespace phatgoose::ui {

class ExpertTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Task, Rank, Alpha, Targets, Gate, GateLoss, TrainingSteps, Modules, ColumnCount };
    static constexpr int kRawRole = Qt::UserRole + 1;

    explicit ExpertTableModel(QObject* parent = nullptr);
    void setExperts(const QList<ExpertRowView>& experts);
    const QList<ExpertRowView>& experts() const { return experts_; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    QVariant raw(const ExpertRowView& e, int column) const;
    QVariant display(const ExpertRowView& e, int column) const;
    QList<ExpertRowView> experts_;
};

}  // namespace phatgoose::ui
