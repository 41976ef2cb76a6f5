#pragma once
// The workbench's main window (the shell): the tabs of the views, the menus, the status bar, and the engine
// thread with its worker. The only UI class that knows EngineWorker; it connects the views' requests to it.
#include <QMainWindow>
#include <QThread>

class QFormLayout;
class QLabel;
class QMenu;
class QProgressBar;
class QTabWidget;
class QToolButton;

namespace phatgoose::ui {

class CompareView;
class EngineWorker;
class ProbeView;
class ResultsView;
class RoutingAnalysisView;
class JobsView;
class ClusterJobs;
struct ModelSummaryView;
class ExpertsView;
class TrainGateDialog;
class TrainExpertDialog;
class ImportLibraryDialog;
struct WorkspaceView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;
    void openWorkspace(const QString& folder);
    void openModel(const QString& folder);
    void openLibrary(const QString& folder);
    // File > Open model from Hugging Face cache: the cached hub ids to pick from, or one typed in.
    void showHubModelDialog();
    ProbeView* probeView() const { return probe_; }
    CompareView* compareView() const { return compare_; }
    ResultsView* resultsView() const { return results_; }
    RoutingAnalysisView* analysisView() const { return analysis_; }
    JobsView* jobsView() const { return jobs_; }
    ClusterJobs* clusterJobs() const { return cluster_jobs_; }
    QTabWidget* tabs() const { return tabs_; }

    // ---- The shell: start-up, recent workspaces, the Experts view and the training dialogs ----
    // With no folder given: the last workspace, else the bundled demo, else a prompt to open one.
    void openStartupWorkspace();
    EngineWorker* worker() const { return worker_; }
    ExpertsView* expertsView() const { return experts_view_; }
    TrainGateDialog* trainGateDialog() const { return train_gate_; }
    TrainExpertDialog* trainExpertDialog() const { return train_expert_; }
    // Shows the dialog with `experts` checked; when empty, keeps the earlier choice or else checks the
    // experts selected in the Experts view.
    TrainGateDialog* showTrainGateDialog(const QStringList& experts = {});
    TrainExpertDialog* showTrainExpertDialog();
    ImportLibraryDialog* showImportLibraryDialog();

Q_SIGNALS:
    void workspaceRequested(const QString& folder);
    void modelRequested(const QString& folder);
    void libraryRequested(const QString& folder);

private:
    void buildMenus();
    void connectWorker();
    void connectResults();   // the Results view <-> the engine worker
    void connectAnalysis();  // the Routing analysis view <-> the engine worker
    void connectJobs();      // the Jobs view and the gate dialog's Slurm runs <-> ClusterJobs
    void showSummary(const ModelSummaryView& summary);
    void showError(const QString& message);
    // ---- Probe and Compare views ----
    void connectProbing();  // the Compare tab, compare requests, expert names for the method pickers
    // ---- The shell ----
    void buildShell();
    void buildExpertsMenu();
    void connectShell();
    void showWorkspace(const WorkspaceView& workspace);
    void fillRecentMenu();
    void openRecent(const QString& folder);
    void restoreLayout();
    void saveLayout() const;
    QThread engine_thread_;
    EngineWorker* worker_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    QFormLayout* form_ = nullptr;
    ProbeView* probe_ = nullptr;
    CompareView* compare_ = nullptr;
    ResultsView* results_ = nullptr;
    RoutingAnalysisView* analysis_ = nullptr;
    JobsView* jobs_ = nullptr;
    ClusterJobs* cluster_jobs_ = nullptr;  // on the engine thread
    QLabel* library_status_ = nullptr;
    // ---- The shell ----
    ExpertsView* experts_view_ = nullptr;
    TrainGateDialog* train_gate_ = nullptr;
    TrainExpertDialog* train_expert_ = nullptr;
    ImportLibraryDialog* import_library_ = nullptr;
    QString workspace_root_;  // the open workspace's folder, empty without one
    QMenu* recent_menu_ = nullptr;
    QLabel* model_status_ = nullptr;
    QLabel* compute_status_ = nullptr;
    QLabel* activity_status_ = nullptr;
    QProgressBar* opening_progress_ = nullptr;
    QToolButton* cancel_opening_ = nullptr;
};

}  // namespace phatgoose::ui
