#pragma once
// A training run as it happens: overall progress, the current step's numbers (loss, learning rate,
// tokens/s, ETA) and a live loss curve with one graph per expert. Shared by the training dialogs.
#include <QStringList>
#include <QWidget>

#include "ui/engine_messages.h"

class QCustomPlot;
class QLabel;
class QProgressBar;

namespace phatgoose::ui {

class TrainingProgressPanel : public QWidget {
    Q_OBJECT
public:
    explicit TrainingProgressPanel(QWidget* parent = nullptr);

    // A new run over `experts` (trained in that order), `steps` updates each: clears the curves.
    void begin(const QStringList& experts, int steps);
    void showProgress(const phatgoose::ui::TrainingProgressView& progress);
    void showMessage(const QString& text, bool problem = false);

    QProgressBar* progressBar() const { return bar_; }
    QLabel* statusLabel() const { return status_; }
    QCustomPlot* plot() const { return plot_; }
    // Points plotted so far for `expert` (0 when it has no graph yet).
    int pointsFor(const QString& expert) const;

private:
    int graphFor(const QString& expert);
    QString describe(const TrainingProgressView& p) const;

    QProgressBar* bar_;
    QLabel* status_;
    QCustomPlot* plot_;
    QStringList experts_;
    int steps_ = 0;
};

}  // namespace phatgoose::ui
