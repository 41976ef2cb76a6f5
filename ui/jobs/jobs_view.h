#pragma once
// The Jobs tab: the workspace's cluster runs (workspace/cluster/*) with every task's state, polled every few
// seconds on the engine thread (ClusterJobs); the selected run's tasks with the log tail of a failed one;
// Cancel and Collect (collection also happens by itself once no task is pending or running).
#include <QList>
#include <QWidget>

#include "ui/engine_messages.h"

class QLabel;
class QPushButton;
class QTableWidget;
class QTimer;

namespace phatgoose::ui {

class JobsView : public QWidget {
    Q_OBJECT
public:
    explicit JobsView(QWidget* parent = nullptr);
    void setWorkspace(const WorkspaceView& workspace);
    const WorkspaceView& workspace() const { return workspace_; }
    const QList<ClusterRunView>& runs() const { return runs_; }
    QTableWidget* runsTable() const { return runs_table_; }
    QTableWidget* tasksTable() const { return tasks_table_; }
    QPushButton* cancelButton() const { return cancel_; }
    QPushButton* collectButton() const { return collect_; }
    QLabel* statusLabel() const { return status_; }

public Q_SLOTS:
    void showRuns(const QList<phatgoose::ui::ClusterRunView>& runs);
    void showMessage(const QString& text);
    void refresh();  // asks for a poll now

Q_SIGNALS:
    void pollRequested(const QString& workspace_root, const QString& database);
    void cancelRequested(const QString& run_dir);
    void collectRequested(const QString& run_dir, const QString& database);
    void runsShown();

private:
    void showTasks();
    QString selectedRun() const;
    WorkspaceView workspace_;
    QList<ClusterRunView> runs_;
    QTableWidget* runs_table_;
    QTableWidget* tasks_table_;
    QPushButton *refresh_, *cancel_, *collect_;
    QLabel* status_;
    QTimer* timer_;
};

}  // namespace phatgoose::ui
