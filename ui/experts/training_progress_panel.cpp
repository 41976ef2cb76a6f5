#include "ui/experts/training_progress_panel.h"

#include <QLabel>
#include <QProgressBar>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "ui/experts/step_ticker.h"
#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {
namespace {

QString duration(double seconds) {
    const long s = std::lround(std::max(0.0, seconds));
    if (s >= 3600) return QStringLiteral("%1h%2m").arg(s / 3600).arg((s / 60) % 60, 2, 10, QChar('0'));
    return QStringLiteral("%1m%2s").arg(s / 60).arg(s % 60, 2, 10, QChar('0'));
}

const QColor kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                           {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};

}  // namespace

TrainingProgressPanel::TrainingProgressPanel(QWidget* parent) : QWidget(parent) {
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1);
    bar_->setValue(0);
    status_ = new QLabel(tr("Not started"), this);
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    plot_ = new QCustomPlot(this);
    plot_->xAxis->setLabel(tr("step"));
    plot_->xAxis->setTicker(stepTicker());
    plot_->yAxis->setLabel(tr("training loss"));
    plot_->legend->setVisible(true);
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot_->setMinimumSize(420, 240);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(bar_);
    layout->addWidget(status_);
    layout->addWidget(plot_, 1);
}

void TrainingProgressPanel::begin(const QStringList& experts, int steps) {
    experts_ = experts;
    steps_ = steps;
    plot_->clearGraphs();
    plot_->xAxis->setRange(0, std::min(std::max(steps, 1), 100));
    plot_->yAxis->setRange(0, 1);
    plot_->replot();
    bar_->setRange(0, std::max<int>(1, int(experts.size()) * steps));
    bar_->setValue(0);
    showMessage(experts.size() == 1 ? tr("Starting %1 ...").arg(experts.front())
                                    : tr("Starting %1 experts ...").arg(experts.size()));
}

int TrainingProgressPanel::graphFor(const QString& expert) {
    for (int g = 0; g < plot_->graphCount(); ++g)
        if (plot_->graph(g)->name() == expert) return g;
    QCPGraph* graph = plot_->addGraph();
    graph->setName(expert);
    graph->setPen(QPen(kPalette[(plot_->graphCount() - 1) % 8], 2));
    return plot_->graphCount() - 1;
}

int TrainingProgressPanel::pointsFor(const QString& expert) const {
    for (int g = 0; g < plot_->graphCount(); ++g)
        if (plot_->graph(g)->name() == expert) return plot_->graph(g)->dataCount();
    return 0;
}

void TrainingProgressPanel::showProgress(const TrainingProgressView& p) {
    QCPGraph* graph = plot_->graph(graphFor(p.expert));
    graph->addData(double(p.step), p.loss);
    bool found = false;
    const QCPRange y = graph->getValueRange(found);
    double top = found ? y.upper : p.loss;
    for (int g = 0; g < plot_->graphCount(); ++g) {
        bool any = false;
        const QCPRange r = plot_->graph(g)->getValueRange(any);
        if (any) top = std::max(top, r.upper);
    }
    // The whole run when short; else the steps so far and a quarter more, so the curve stays readable.
    plot_->xAxis->setRange(0, std::min<double>(double(p.total), std::max(100.0, 1.25 * double(p.step))));
    plot_->yAxis->setRange(0, top * 1.1 + 1e-9);
    // Queued: many steps a second coalesce into one repaint per event-loop pass, keeping the GUI fluent.
    plot_->replot(QCustomPlot::rpQueuedReplot);
    const int index = std::max<int>(0, int(experts_.indexOf(p.expert)));
    bar_->setMaximum(std::max<int>(1, int(std::max<qsizetype>(experts_.size(), 1) * p.total)));
    bar_->setValue(int(index * p.total + p.step));
    showMessage(describe(p));
}

QString TrainingProgressPanel::describe(const TrainingProgressView& p) const {
    // Later experts take about as long per step as this one.
    const qint64 left_here = p.total - p.step;
    const double per_step = left_here > 0 ? p.eta_s / double(left_here) : 0.0;
    const int index = std::max<int>(0, int(experts_.indexOf(p.expert)));
    const qsizetype experts_after = std::max<qsizetype>(0, experts_.size() - index - 1);
    const double eta = p.eta_s + double(experts_after) * double(p.total) * per_step;
    QString who = p.expert;
    if (experts_.size() > 1) who += tr(" (%1 of %2)").arg(index + 1).arg(experts_.size());
    return tr("%1: step %2/%3, loss %4, lr %5, %6 tokens/s, ETA %7")
        .arg(who)
        .arg(p.step)
        .arg(p.total)
        .arg(p.loss, 0, 'f', 4)
        .arg(p.learning_rate, 0, 'e', 2)
        .arg(p.tokens_per_s, 0, 'f', 0)
        .arg(duration(eta));
}

void TrainingProgressPanel::showMessage(const QString& text, bool problem) {
    status_->setText(text);
    status_->setStyleSheet(problem ? QStringLiteral("color: #b00020;") : QString());
}

}  // namespace phatgoose::ui
