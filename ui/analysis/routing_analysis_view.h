#pragma once
// The Routing analysis tab: which experts whole datasets route to. A stored analysis (a route-stats run of
// the workspace's database) is drawn as a datasets x experts heatmap of mean routing weight over a chosen
// set of modules (both stacks or one, one module kind or all, one layer or all), held-out datasets marked,
// rows and columns ordered so that similar ones sit together; clicking a cell plots that dataset's weight on
// that expert layer by layer (encoder and decoder as two lines); a second view shows how alike the datasets
// route (cosine of their weight rows). "New analysis" runs the workspace's test sets on the engine thread
// with progress and Cancel. Reads the database on the GUI thread, like the Results view.
#include <QWidget>

#include "routing/routing_statistics.h"
#include "ui/engine_messages.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QStackedWidget;

namespace phatgoose::ui {

class LabeledHeatmap;
class RoutingMethodPicker;

class RoutingAnalysisView : public QWidget {
    Q_OBJECT
public:
    explicit RoutingAnalysisView(QWidget* parent = nullptr);

    void setWorkspace(const WorkspaceView& workspace);
    void setExpertNames(const QStringList& names);
    // Lists the database's route-stats runs and shows `select` (or the newest) when given none.
    void reloadRuns(qint64 select = -1);
    void showRun(qint64 run);

    // For tests and exports: what is drawn.
    LabeledHeatmap* weightsMap() const { return weights_; }
    LabeledHeatmap* similarityMap() const { return similarity_; }
    QCustomPlot* profilePlot() const { return profile_; }
    QComboBox* runBox() const { return runs_; }
    QComboBox* stackBox() const { return stack_; }
    QComboBox* kindBox() const { return kind_; }
    QSpinBox* layerBox() const { return layer_; }
    QComboBox* viewBox() const { return view_; }
    RoutingMethodPicker* methodPicker() const { return picker_; }
    QPushButton* newAnalysisButton() const { return start_; }
    QPushButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return progress_; }
    const RoutingStatistics& statistics() const { return statistics_; }
    // Dataset and expert indices (into statistics()) of the heatmap's rows and columns, in drawing order.
    const std::vector<size_t>& rowDatasets() const { return row_order_; }
    const std::vector<size_t>& columnExperts() const { return column_order_; }
    // Plots the layer profile of one dataset and expert (statistics() indices).
    void showProfile(size_t dataset, size_t expert);
    // The drawn matrix as CSV (rows as drawn; datasets x experts, or datasets x datasets).
    void exportCsv(const QString& file) const;

public Q_SLOTS:
    // From the Results view: shows a stored run with the request's method, k and exclusions that covers its
    // datasets (the first dataset's profile on its top expert), or starts that analysis.
    void analyseDatasets(const phatgoose::ui::RoutingAnalysisRequest& request);
    void showProgress(qint64 done, qint64 total, const QString& dataset);
    void finishAnalysis(qint64 run, const QString& status);

Q_SIGNALS:
    void analysisRequested(const phatgoose::ui::RoutingAnalysisRequest& request);
    void cancelRequested();  // connect directly (not queued) to EngineWorker::requestCancel

private:
    void requestAnalysis();
    void start(const RoutingAnalysisRequest& request);
    qint64 storedRunFor(const RoutingAnalysisRequest& request) const;
    void redraw();
    QString datasetLabel(const std::string& name) const;
    QStringList testSets() const;
    WorkspaceView workspace_;
    RoutingStatistics statistics_;
    std::vector<size_t> row_order_, column_order_;
    RoutingMethodPicker* picker_;
    QPushButton *start_, *cancel_, *export_;
    QProgressBar* progress_;
    QLabel* status_;
    QComboBox *runs_, *stack_, *kind_, *view_;
    QSpinBox* layer_;
    QStackedWidget* maps_;
    LabeledHeatmap *weights_, *similarity_;
    QCustomPlot* profile_;
};

}  // namespace phatgoose::ui
