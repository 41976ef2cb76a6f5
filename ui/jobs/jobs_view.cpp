#include "ui/jobs/jobs_view.h"

#include <QDir>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>

namespace phatgoose::ui {

namespace {

constexpr int kPollMs = 3000;

QTableWidget* table(const QStringList& headers, QWidget* parent) {
    auto* t = new QTableWidget(0, int(headers.size()), parent);
    t->setHorizontalHeaderLabels(headers);
    t->setSelectionBehavior(QAbstractItemView::SelectRows);
    t->setSelectionMode(QAbstractItemView::SingleSelection);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->verticalHeader()->setVisible(false);
    t->horizontalHeader()->setStretchLastSection(true);
    return t;
}

QColor stateColour(const QString& state) {
    if (state == "done") return QColor("#d8f0d8");
    if (state == "failed") return QColor("#f6d5d5");
    if (state == "running") return QColor("#d8e6f6");
    if (state == "cancelled") return QColor("#e6e6e6");
    return QColor("#fbf3d5");  // pending
}

}  // namespace

JobsView::JobsView(QWidget* parent) : QWidget(parent) {
    runs_table_ = table({tr("run"), tr("kind"), tr("job"), tr("done"), tr("running"), tr("pending"),
                         tr("failed"), tr("collected")},
                        this);
    tasks_table_ = table({tr("#"), tr("task"), tr("state"), tr("log (failed tasks)")}, this);
    refresh_ = new QPushButton(tr("Refresh"), this);
    cancel_ = new QPushButton(tr("Cancel run"), this);
    collect_ = new QPushButton(tr("Collect"), this);
    cancel_->setToolTip(tr("scancel the selected run's job"));
    collect_->setToolTip(
        tr("Bring the selected run's finished tasks into the workspace (also automatic once "
           "no task is pending or running)"));
    status_ = new QLabel(tr("Runs submitted to Slurm from this workspace appear here."), this);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(refresh_);
    buttons->addWidget(cancel_);
    buttons->addWidget(collect_);
    buttons->addWidget(status_, 1);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(runs_table_);
    split->addWidget(tasks_table_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(buttons);
    layout->addWidget(split, 1);
    timer_ = new QTimer(this);
    timer_->setInterval(kPollMs);
    connect(timer_, &QTimer::timeout, this, &JobsView::refresh);
    connect(refresh_, &QPushButton::clicked, this, &JobsView::refresh);
    connect(cancel_, &QPushButton::clicked, this, [this] {
        if (!selectedRun().isEmpty()) Q_EMIT cancelRequested(selectedRun());
    });
    connect(collect_, &QPushButton::clicked, this, [this] {
        if (!selectedRun().isEmpty()) Q_EMIT collectRequested(selectedRun(), workspace_.database);
    });
    connect(runs_table_, &QTableWidget::itemSelectionChanged, this, &JobsView::showTasks);
}

void JobsView::setWorkspace(const WorkspaceView& workspace) {
    workspace_ = workspace;
    timer_->start();
    refresh();
}

void JobsView::refresh() {
    if (!workspace_.root.isEmpty()) Q_EMIT pollRequested(workspace_.root, workspace_.database);
}

QString JobsView::selectedRun() const {
    const int row = runs_table_->currentRow();
    return row >= 0 && row < runs_.size() ? runs_[row].dir : QString();
}

void JobsView::showRuns(const QList<ClusterRunView>& runs) {
    const QString selected = selectedRun();
    runs_ = runs;
    runs_table_->setRowCount(int(runs.size()));
    int select = runs.isEmpty() ? -1 : int(runs.size()) - 1;  // the newest by default
    for (int r = 0; r < runs.size(); ++r) {
        const ClusterRunView& run = runs[r];
        int count[5] = {};  // done, running, pending, failed (with cancelled)
        for (const ClusterTaskView& t : run.tasks)
            ++count[t.state == "done" ? 0 : t.state == "running" ? 1 : t.state == "pending" ? 2 : 3];
        const QStringList cells = {QDir(run.dir).dirName(),
                                   run.error.isEmpty() ? run.kind : tr("unreadable: %1").arg(run.error),
                                   run.job_id,
                                   QString("%1 / %2").arg(count[0]).arg(run.tasks.size()),
                                   QString::number(count[1]),
                                   QString::number(count[2]),
                                   QString::number(count[3]),
                                   QString::number(run.collected)};
        for (int c = 0; c < cells.size(); ++c) runs_table_->setItem(r, c, new QTableWidgetItem(cells[c]));
        if (run.dir == selected) select = r;
    }
    runs_table_->resizeColumnsToContents();
    if (select >= 0) runs_table_->selectRow(select);
    showTasks();
    Q_EMIT runsShown();
}

void JobsView::showTasks() {
    const int row = runs_table_->currentRow();
    const QList<ClusterTaskView> tasks =
        row >= 0 && row < runs_.size() ? runs_[row].tasks : QList<ClusterTaskView>();
    tasks_table_->setRowCount(int(tasks.size()));
    for (int i = 0; i < tasks.size(); ++i) {
        const QStringList cells = {QString::number(i), tasks[i].name, tasks[i].state,
                                   tasks[i].log_tail.simplified()};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            if (c == 2) item->setBackground(stateColour(tasks[i].state));
            if (c == 3) item->setToolTip(tasks[i].log_tail);
            tasks_table_->setItem(i, c, item);
        }
    }
    tasks_table_->resizeColumnsToContents();
    cancel_->setEnabled(row >= 0);
    collect_->setEnabled(row >= 0);
}

void JobsView::showMessage(const QString& text) {
    status_->setText(text);
}

}  // namespace phatgoose::ui
