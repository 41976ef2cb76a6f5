#pragma once
// The Results tab: the evaluation runs stored in the workspace's workbench.sqlite. A run selector (the
// latest by default, or all runs), the metrics as a sortable, filterable table, accuracy per dataset per
// method as a grouped bar chart, the per-example predictions behind a selected metric row, and
// "New evaluation..." which asks the engine thread for a run and follows its progress.
//
// The database is read here, on the GUI thread, through the view's own ResultsStore (QtSql, no model code:
// quick). Evaluations run on the engine thread, which writes through its own connection; SQLite's WAL
// mode lets this view read while it writes.
#include <QHash>
#include <QWidget>
#include <functional>
#include <memory>

#include "ui/engine_messages.h"

class QAction;
class QComboBox;
class QLabel;
class QLineEdit;
class QModelIndex;
class QProgressBar;
class QPushButton;
class QTableView;

namespace phatgoose {
class ResultsStore;
}

namespace phatgoose::ui {

class AccuracyChart;
class PredictionsFilter;
class PredictionsTableModel;
class ResultsFilter;
class ResultsTableModel;
struct ResultRow;

class ResultsView : public QWidget {
    Q_OBJECT
public:
    static constexpr qint64 kAllRuns = -1;

    explicit ResultsView(QWidget* parent = nullptr);
    ~ResultsView() override;

    // For the main window's Results menu.
    QAction* newEvaluationAction() const { return new_evaluation_; }
    QAction* exportTableAction() const { return export_table_; }
    QAction* exportPredictionsAction() const { return export_predictions_; }
    // Opens the selected prediction's input in the probe with the shown result's method and k.
    QAction* openInProbeAction() const { return open_in_probe_; }
    QAction* saveChartAction() const { return save_chart_; }
    // Routing statistics of the selected result row's dataset under its method and k (stored or new).
    QAction* analyseRoutingAction() const { return analyse_routing_; }

    // The parts, for tests.
    QComboBox* runSelector() const { return run_; }
    QLineEdit* textFilter() const { return text_; }
    QComboBox* methodFilter() const { return method_; }
    QComboBox* datasetFilter() const { return dataset_; }
    QComboBox* outcomeFilter() const { return outcome_; }
    QTableView* metricsTable() const { return metrics_view_; }
    QTableView* predictionsTable() const { return predictions_view_; }
    ResultsTableModel* metricsModel() const { return metrics_; }
    PredictionsTableModel* predictionsModel() const { return predictions_; }
    AccuracyChart* chart() const { return chart_; }
    QProgressBar* progressBar() const { return progress_; }
    QPushButton* cancelButton() const { return cancel_; }
    QString errorText() const;  // what is wrong with the database; empty while it reads fine
    QString statusText() const;
    qint64 shownRun() const;  // kAllRuns, or a run id; 0 when there is none
    bool evaluating() const { return evaluating_; }

    // Files; each throws phatgoose::Error naming the file when it cannot be written.
    void exportMetricsCsv(const QString& file) const;      // the rows the filters keep, in view order
    void exportPredictionsCsv(const QString& file) const;  // the drill-down's rows
    void saveChart(const QString& file) const;             // PDF for a .pdf suffix, else PNG

public Q_SLOTS:
    void setWorkspace(const phatgoose::ui::WorkspaceView& workspace);
    void setExperts(const QStringList& experts);
    void refresh();  // rereads the database, keeping the chosen run
    void selectRun(qint64 run);
    void newEvaluation();  // the dialog, then startEvaluation()
    void startEvaluation(const phatgoose::ui::EvaluationRequest& request);
    void showEvaluationProgress(qint64 done, qint64 total, const QString& method, const QString& dataset);
    void finishEvaluation(qint64 run, const QString& status, const QStringList& warnings = {});

Q_SIGNALS:
    void evaluationRequested(const phatgoose::ui::EvaluationRequest& request);
    // "Run on: Slurm" was chosen: the grid as a cluster run (the shell adds the workspace's folders).
    void clusterEvaluationRequested(const phatgoose::ui::EvaluationRequest& request);
    void cancelRequested();  // connect directly (not queued) to EngineWorker::requestCancel
    void resultsShown();     // after each (re)load of the table and the chart
    void predictionsShown();
    // The example's input under the result's routing configuration, for the Prompt probe to run.
    void openInProbe(const phatgoose::ui::ProbeRequest& request);
    // The selected row's dataset file under the row's method, k and the run's exclusions.
    void analyseRouting(const phatgoose::ui::RoutingAnalysisRequest& request);
    void evaluationEnded(qint64 run, const QString& status);

private:
    static constexpr qint64 kLatestRun = -2;

    QWidget* buildControls();
    QWidget* buildProgress();
    QWidget* buildPredictions();
    void buildActions();
    void reload(qint64 select);
    void fillRunSelector(qint64 select);
    void showSelectedRun();
    QList<ResultRow> rowsOf(qint64 run) const;
    void updateFilterChoices();
    void showPredictionsOf(const QModelIndex& proxy_index);
    void showDatabaseError(const QString& message);
    void setStatus(const QString& text);
    void exportWithDialog(const QString& title, const QString& filters,
                          const std::function<void(const QString&)>& write);

    WorkspaceView workspace_;
    QStringList experts_;
    QHash<QString, QString> roles_;  // dataset name -> "held-in" / "held-out"
    std::unique_ptr<phatgoose::ResultsStore> store_;
    bool evaluating_ = false;

    QAction* new_evaluation_ = nullptr;
    QAction* export_table_ = nullptr;
    QAction* export_predictions_ = nullptr;
    QAction* open_in_probe_ = nullptr;
    QAction* analyse_routing_ = nullptr;
    void requestRoutingAnalysis();
    bool analysable() const;  // the shown result's method routes tokens or examples among the experts
    bool probeable() const;   // the shown result's method is a routing method the probe can run
    QString shown_method_;    // the method label and k of the result whose predictions are shown
    int shown_top_k_ = 0;
    qint64 shown_run_ = 0;  // and its run and dataset
    QString shown_dataset_;
    QAction* save_chart_ = nullptr;
    QComboBox* run_ = nullptr;
    QLineEdit* text_ = nullptr;
    QComboBox* method_ = nullptr;
    QComboBox* dataset_ = nullptr;
    QComboBox* outcome_ = nullptr;
    QLabel* error_ = nullptr;
    QLabel* status_ = nullptr;
    QWidget* progress_row_ = nullptr;
    QLabel* progress_label_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QLabel* predictions_caption_ = nullptr;
    ResultsTableModel* metrics_ = nullptr;
    ResultsFilter* metrics_filter_ = nullptr;
    QTableView* metrics_view_ = nullptr;
    PredictionsTableModel* predictions_ = nullptr;
    PredictionsFilter* predictions_filter_ = nullptr;
    QTableView* predictions_view_ = nullptr;
    AccuracyChart* chart_ = nullptr;
};

}  // namespace phatgoose::ui
