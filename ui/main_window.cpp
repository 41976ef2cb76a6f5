#include "ui/main_window.h"

#include <QApplication>
#include <QFileDialog>
#include <QFormLayout>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolButton>

#include "model/hub_cache.h"
#include "ui/engine_worker.h"
#include "ui/probe/probe_view.h"

// The shell
#include <QDir>
#include <QFileInfo>
#include <QPushButton>
#include <QSettings>
#include <QTimer>

#include "ui/analysis/routing_analysis_view.h"
#include "ui/demo_location.h"
#include "ui/experts/experts_view.h"
#include "ui/experts/import_library_dialog.h"
#include "ui/experts/train_expert_dialog.h"
#include "ui/experts/train_gate_dialog.h"
#include "ui/jobs/cluster_jobs.h"
#include "ui/jobs/jobs_view.h"
#include "ui/probe/compare_view.h"
#include "ui/probe/routing_method_picker.h"
#include "ui/recent_workspaces.h"
#include "ui/results/results_view.h"

namespace phatgoose::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    qRegisterMetaType<WorkspaceView>();
    qRegisterMetaType<ModelSummaryView>();
    qRegisterMetaType<ProbeRequest>();
    qRegisterMetaType<ProbeResult>();
    qRegisterMetaType<EvaluationRequest>();
    setWindowTitle(tr("PHATGOOSE Workbench"));
    resize(1100, 700);
    tabs_ = new QTabWidget(this);
    auto* summary = new QWidget(tabs_);
    form_ = new QFormLayout(summary);
    auto* prompt = new QLabel(tr("<b>No workspace is open.</b><br>Open a workspace folder (one with "
                                 "workspace.json, or with model/ and experts/) with File > Open workspace, "
                                 "or a bare T5 model folder with File > Open model folder."),
                              summary);
    prompt->setWordWrap(true);
    auto* open_workspace = new QPushButton(tr("Open workspace..."), summary);
    connect(open_workspace, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a workspace folder"));
        if (!dir.isEmpty()) openWorkspace(dir);
    });
    form_->addRow(prompt);
    form_->addRow(open_workspace);
    probe_ = new ProbeView(tabs_);
    // Every tab's widget has an object name: the saved layout remembers the tab by it, not by its
    // (translated) title.
    summary->setObjectName("model");
    probe_->setObjectName("probe");
    tabs_->addTab(summary, tr("Model"));
    tabs_->addTab(probe_, tr("Prompt probe"));
    results_ = new ResultsView(tabs_);
    results_->setObjectName("results");
    tabs_->addTab(results_, tr("Results"));
    analysis_ = new RoutingAnalysisView(tabs_);
    analysis_->setObjectName("analysis");
    tabs_->addTab(analysis_, tr("Routing analysis"));
    jobs_ = new JobsView(tabs_);
    jobs_->setObjectName("jobs");
    tabs_->addTab(jobs_, tr("Jobs"));
    // The first screen is the probe (with an example prompt once a workspace opens), not the Model form.
    tabs_->setCurrentWidget(probe_);
    setCentralWidget(tabs_);
    library_status_ = new QLabel(tr("no experts"), this);
    statusBar()->addPermanentWidget(library_status_);
    buildMenus();
    connectWorker();
    connectProbing();
    buildShell();
    statusBar()->showMessage(tr("Ready"));
}

MainWindow::~MainWindow() {
    saveLayout();
    worker_->requestCancel();  // a training still running would otherwise hold up the wait below
    engine_thread_.quit();
    engine_thread_.wait();
}

void MainWindow::connectWorker() {
    worker_ = new EngineWorker;
    worker_->moveToThread(&engine_thread_);
    connect(&engine_thread_, &QThread::finished, worker_, &QObject::deleteLater);
    connect(this, &MainWindow::workspaceRequested, worker_, &EngineWorker::openWorkspace);
    connect(this, &MainWindow::modelRequested, worker_, &EngineWorker::openModel);
    connect(this, &MainWindow::libraryRequested, worker_, &EngineWorker::openLibrary);
    connect(probe_, &ProbeView::probeRequested, worker_, &EngineWorker::probe);
    connect(worker_, &EngineWorker::busy, this, [this](const QString& what) {
        statusBar()->showMessage(what);
        probe_->setBusy(true);
    });
    connect(worker_, &EngineWorker::idle, this, [this] { probe_->setBusy(false); });
    connect(worker_, &EngineWorker::modelOpened, this, &MainWindow::showSummary);
    connect(worker_, &EngineWorker::libraryOpened, this,
            [this](const QString& folder, const QStringList& experts) {
                library_status_->setText(tr("%n expert(s)", nullptr, int(experts.size())));
                statusBar()->showMessage(tr("Experts from %1: %2").arg(folder, experts.join(", ")));
            });
    connect(worker_, &EngineWorker::probed, this, [this](const ProbeResult& r) {
        probe_->showResult(r);
        statusBar()->showMessage(r.warnings.isEmpty() ? tr("Done")
                                                      : tr("Done. Note: %1").arg(r.warnings.join("; ")));
    });
    connect(worker_, &EngineWorker::failed, this, &MainWindow::showError);
    connectResults();
    connectAnalysis();
    connectJobs();
    engine_thread_.start();
}

// ---- Probe and Compare views ----

void MainWindow::connectProbing() {
    qRegisterMetaType<CompareRequest>();
    qRegisterMetaType<CompareResult>();
    compare_ = new CompareView(tabs_);
    compare_->setObjectName("compare");
    tabs_->insertTab(tabs_->indexOf(probe_) + 1, compare_, tr("Compare"));
    connect(compare_, &CompareView::compareRequested, worker_, &EngineWorker::compare);
    connect(worker_, &EngineWorker::compared, this, [this](const CompareResult& r) {
        compare_->showResult(r);
        QStringList warnings = r.a.warnings;
        for (const QString& w : r.b.warnings)
            if (!warnings.contains(w)) warnings << w;
        statusBar()->showMessage(warnings.isEmpty() ? tr("Done")
                                                    : tr("Done. Note: %1").arg(warnings.join("; ")));
    });
    connect(worker_, &EngineWorker::busy, compare_, [this] { compare_->setBusy(true); });
    connect(worker_, &EngineWorker::idle, compare_, [this] { compare_->setBusy(false); });
    auto setNames = [this](const QStringList& names) {
        probe_->setExpertNames(names);
        compare_->setExpertNames(names);
    };
    connect(worker_, &EngineWorker::libraryOpened, this,
            [setNames](const QString&, const QStringList& names) { setNames(names); });
    // Training adds experts without reopening the library.
    connect(worker_, &EngineWorker::libraryListed, this, [setNames](const QList<ExpertRowView>& rows) {
        QStringList names;
        for (const ExpertRowView& r : rows) names << r.name;
        setNames(names);
    });
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open workspace..."), QKeySequence::Open, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a workspace folder"));
        if (!dir.isEmpty()) openWorkspace(dir);
    });
    recent_menu_ = file->addMenu(tr("&Recent workspaces"));
    connect(recent_menu_, &QMenu::aboutToShow, this, &MainWindow::fillRecentMenu);
    file->addAction(tr("Open &model folder..."), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a T5 model folder"));
        if (!dir.isEmpty()) openModel(dir);
    });
    file->addAction(tr("Open model from &Hugging Face cache..."), this, &MainWindow::showHubModelDialog);
    file->addAction(tr("Open &expert library..."), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open an expert library"));
        if (!dir.isEmpty()) openLibrary(dir);
    });
    file->addAction(tr("&Import expert library..."), this, [this] { showImportLibraryDialog(); });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, qApp, &QApplication::quit);
    QMenu* results = menuBar()->addMenu(tr("&Results"));
    results->addAction(results_->newEvaluationAction());
    results->addAction(results_->analyseRoutingAction());
    results->addAction(results_->openInProbeAction());
    results->addSeparator();
    results->addAction(results_->exportTableAction());
    results->addAction(results_->exportPredictionsAction());
    results->addAction(results_->saveChartAction());
}

void MainWindow::openWorkspace(const QString& folder) {
    Q_EMIT workspaceRequested(folder);
}
void MainWindow::openModel(const QString& folder) {
    Q_EMIT modelRequested(folder);
}
void MainWindow::showHubModelDialog() {
    QStringList ids;
    for (const std::string& id : cachedHubModels()) ids << QString::fromStdString(id);
    QStringList folders;
    for (const auto& f : hubCacheFolders())
        folders << QDir::toNativeSeparators(QString::fromStdString(f.string()));
    QInputDialog dialog(this);
    dialog.setObjectName("hubModelDialog");
    dialog.setWindowTitle(tr("Open model from Hugging Face cache"));
    dialog.setLabelText(
        ids.isEmpty()
            ? tr("No models found in %1.\nType a hub id (nothing is downloaded):").arg(folders.join(", "))
            : tr("Models in %1 (nothing is downloaded):").arg(folders.join(", ")));
    dialog.setComboBoxItems(ids);
    dialog.setComboBoxEditable(true);
    if (dialog.exec() != QDialog::Accepted || dialog.textValue().trimmed().isEmpty()) return;
    openModel(dialog.textValue().trimmed());  // the engine resolves the id and reports where it looked
}

void MainWindow::openLibrary(const QString& folder) {
    Q_EMIT libraryRequested(folder);
}

void MainWindow::showSummary(const ModelSummaryView& s) {
    while (form_->rowCount() > 0) form_->removeRow(0);
    auto add = [&](const QString& label, const QString& value) {
        auto* v = new QLabel(value);
        v->setTextInteractionFlags(Qt::TextSelectableByMouse);
        form_->addRow("<b>" + label + "</b>", v);
    };
    add(tr("Folder"), s.folder);
    add(tr("Family"), s.family);
    add(tr("Shape"), s.shape);
    add(tr("Vocabulary"), s.vocabulary);
    add(tr("Parameters"), s.parameters);
    add(tr("Stored dtype"), s.dtype);
    add(tr("LoRA sites"), s.lora_sites);
    statusBar()->showMessage(tr("Loaded %1").arg(s.folder));
}

void MainWindow::showError(const QString& message) {
    statusBar()->showMessage(tr("Failed"));
    // open(), not exec(): a nested event loop would stall the engine's queued signals (and tests).
    auto* box =
        new QMessageBox(QMessageBox::Warning, tr("PHATGOOSE Workbench"), message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

// ---- Results view ----
void MainWindow::connectResults() {
    connect(worker_, &EngineWorker::workspaceOpened, results_, &ResultsView::setWorkspace);
    connect(worker_, &EngineWorker::libraryOpened, results_,
            [this](const QString&, const QStringList& experts) { results_->setExperts(experts); });
    connect(results_, &ResultsView::evaluationRequested, worker_, &EngineWorker::evaluate);
    // Direct, not queued: the worker's thread is busy with the very evaluation to cancel.
    connect(results_, &ResultsView::cancelRequested, this, [this] { worker_->requestCancel(); });
    connect(worker_, &EngineWorker::evaluationProgress, results_, &ResultsView::showEvaluationProgress);
    connect(worker_, &EngineWorker::evaluationFinished, results_, &ResultsView::finishEvaluation);
    connect(results_, &ResultsView::openInProbe, this, [this](const ProbeRequest& r) {
        probe_->setPrompt(r.prompt);
        probe_->setMethod(r.method);
        probe_->methodPicker()->setTopK(r.top_k);
        if (!r.expert.isEmpty()) probe_->methodPicker()->setExpert(r.expert);
        tabs_->setCurrentWidget(probe_);
        probe_->run();
    });
    connect(results_, &ResultsView::evaluationEnded, this,
            [this] { statusBar()->showMessage(results_->statusText()); });
}

// ---- Jobs view: cluster runs ----
void MainWindow::connectJobs() {
    qRegisterMetaType<ClusterGatesRequest>();
    qRegisterMetaType<ClusterEvalRequest>();
    qRegisterMetaType<QList<ClusterRunView>>();
    cluster_jobs_ = new ClusterJobs;
    cluster_jobs_->moveToThread(&engine_thread_);
    connect(&engine_thread_, &QThread::finished, cluster_jobs_, &QObject::deleteLater);
    connect(worker_, &EngineWorker::workspaceOpened, jobs_, &JobsView::setWorkspace);
    connect(jobs_, &JobsView::pollRequested, cluster_jobs_, &ClusterJobs::poll);
    connect(jobs_, &JobsView::cancelRequested, cluster_jobs_, &ClusterJobs::cancel);
    connect(jobs_, &JobsView::collectRequested, cluster_jobs_, &ClusterJobs::collect);
    connect(cluster_jobs_, &ClusterJobs::polled, jobs_, &JobsView::showRuns);
    connect(cluster_jobs_, &ClusterJobs::failed, jobs_, &JobsView::showMessage);
    connect(cluster_jobs_, &ClusterJobs::submitted, this, [this](const QString& dir, const QString& job) {
        jobs_->showMessage(tr("Submitted job %1 (%2)").arg(job, dir));
        jobs_->refresh();
    });
    connect(results_, &ResultsView::clusterEvaluationRequested, this,
            [this](const EvaluationRequest& evaluation) {
                const WorkspaceView& ws = jobs_->workspace();
                const ClusterEvalRequest r{ws.root, ws.model_dir, ws.experts_dir, evaluation};
                QMetaObject::invokeMethod(cluster_jobs_,
                                          [jobs = cluster_jobs_, r] { jobs->submitEvaluation(r); });
            });
    connect(cluster_jobs_, &ClusterJobs::collected, this, [this](const QString& dir, const QString& summary) {
        results_->refresh();  // collected evaluation cells are a run of the workspace's database now
        jobs_->showMessage(tr("%1: %2").arg(QDir(dir).dirName(), summary));
        // Collected gates are in the library's folders now: open it again.
        if (!jobs_->workspace().experts_dir.isEmpty())
            Q_EMIT libraryRequested(jobs_->workspace().experts_dir);
    });
}

// ---- Routing analysis view ----
void MainWindow::connectAnalysis() {
    qRegisterMetaType<RoutingAnalysisRequest>();
    connect(worker_, &EngineWorker::workspaceOpened, analysis_, &RoutingAnalysisView::setWorkspace);
    connect(worker_, &EngineWorker::libraryOpened, analysis_,
            [this](const QString&, const QStringList& experts) { analysis_->setExpertNames(experts); });
    connect(analysis_, &RoutingAnalysisView::analysisRequested, worker_, &EngineWorker::analyseRouting);
    connect(results_, &ResultsView::analyseRouting, this, [this](const RoutingAnalysisRequest& r) {
        tabs_->setCurrentWidget(analysis_);
        analysis_->analyseDatasets(r);
    });
    // Direct, not queued: the worker's thread is busy with the very analysis to cancel.
    connect(analysis_, &RoutingAnalysisView::cancelRequested, this, [this] { worker_->requestCancel(); });
    connect(worker_, &EngineWorker::routingAnalysisProgress, analysis_, &RoutingAnalysisView::showProgress);
    connect(worker_, &EngineWorker::routingAnalysisFinished, analysis_, &RoutingAnalysisView::finishAnalysis);
    connect(worker_, &EngineWorker::routingAnalysisFinished, this, [this](qint64 run, const QString& status) {
        if (status != "failed")
            statusBar()->showMessage(tr("Routing analysis %1 (run %2)").arg(status).arg(run));
    });
}

// ---- The shell: start-up, recent workspaces, the Experts view and the training dialogs ----

void MainWindow::buildShell() {
    qRegisterMetaType<ExpertRowView>();
    qRegisterMetaType<QList<ExpertRowView>>();
    qRegisterMetaType<GateTrainingRequest>();
    qRegisterMetaType<ExpertTrainingRequest>();
    qRegisterMetaType<TrainingProgressView>();
    qRegisterMetaType<TrainingOutcomeView>();
    experts_view_ = new ExpertsView(tabs_);
    experts_view_->setObjectName("experts");
    tabs_->insertTab(1, experts_view_, tr("Experts"));  // after Model: what the workspace holds
    train_gate_ = new TrainGateDialog(this);
    train_expert_ = new TrainExpertDialog(this);
    model_status_ = new QLabel(tr("no model"), this);
    compute_status_ = new QLabel(this);
    activity_status_ = new QLabel(tr("idle"), this);
    activity_status_->setMinimumWidth(160);
    // Left to right after the transient messages: model, experts (library_status_), threads, activity.
    statusBar()->insertPermanentWidget(0, model_status_);
    statusBar()->addPermanentWidget(compute_status_);
    statusBar()->addPermanentWidget(activity_status_);
    opening_progress_ = new QProgressBar(this);
    opening_progress_->setObjectName("openingProgress");
    opening_progress_->setMaximumWidth(260);
    opening_progress_->setVisible(false);
    cancel_opening_ = new QToolButton(this);
    cancel_opening_->setText(tr("Cancel"));
    cancel_opening_->setToolTip(tr("Stop opening the expert library; what was open stays open"));
    cancel_opening_->setVisible(false);
    statusBar()->addPermanentWidget(opening_progress_);
    statusBar()->addPermanentWidget(cancel_opening_);
    buildExpertsMenu();
    connectShell();
    QMetaObject::invokeMethod(worker_, &EngineWorker::startCompute, Qt::QueuedConnection);
    // Last in the constructor, when every tab exists; whatever chooses a tab afterwards (main's --probe, no
    // workspace to open) wins over the saved one.
    restoreLayout();
}

void MainWindow::buildExpertsMenu() {
    QMenu* experts = menuBar()->addMenu(tr("E&xperts"));
    experts->addAction(tr("Train &gates..."), this,
                       [this] { showTrainGateDialog(experts_view_->selectedExperts()); });
    experts->addAction(tr("Train new &expert..."), this, &MainWindow::showTrainExpertDialog);
}

void MainWindow::connectShell() {
    connect(worker_, &EngineWorker::busy, activity_status_, &QLabel::setText);
    connect(worker_, &EngineWorker::idle, activity_status_, [this] {
        activity_status_->setText(tr("idle"));
        opening_progress_->setVisible(false);
        cancel_opening_->setVisible(false);
    });
    connect(worker_, &EngineWorker::openingProgress, this, [this](int done, int total, double gb) {
        opening_progress_->setRange(0, total);
        opening_progress_->setValue(done);
        opening_progress_->setFormat(tr("experts %1 of %2 · %3 GB").arg(done).arg(total).arg(gb, 0, 'f', 2));
        opening_progress_->setVisible(true);
        cancel_opening_->setVisible(true);
    });
    // Direct, not queued: the engine thread is busy with the very opening to cancel.
    connect(cancel_opening_, &QToolButton::clicked, this, [this] { worker_->requestCancel(); });
    connect(worker_, &EngineWorker::openingCancelled, this, [this] {
        statusBar()->showMessage(tr("Opening cancelled: what was open before is still open"));
    });
    connect(worker_, &EngineWorker::computeDescribed, compute_status_, &QLabel::setText);
    connect(worker_, &EngineWorker::modelOpened, this, [this](const ModelSummaryView& s) {
        // A workspace's model folder is always "model": its workspace's name says more.
        const QFileInfo folder(s.folder);
        const QString name = folder.fileName() == "model" ? folder.dir().dirName() + "/" + folder.fileName()
                                                          : folder.fileName();
        model_status_->setText(tr("%1 (%2)").arg(name, s.family.section(" (", 0, 0)));
        model_status_->setToolTip(tr("%1\n%2\n%3").arg(s.folder, s.family, s.shape));
    });
    connect(worker_, &EngineWorker::workspaceOpened, this, &MainWindow::showWorkspace);
    connect(worker_, &EngineWorker::libraryListed, this, [this](const QList<ExpertRowView>& experts) {
        // The dialogs first: the view's expertsShown() may be answered by opening one of them.
        train_gate_->setExperts(experts);
        QStringList names;
        for (const ExpertRowView& e : experts) names << e.name;
        train_expert_->setExistingNames(names);
        library_status_->setText(tr("%n expert(s)", nullptr, int(experts.size())));
        experts_view_->setExperts(experts);
    });
    connect(experts_view_, &ExpertsView::trainGatesRequested, this, &MainWindow::showTrainGateDialog);
    connect(experts_view_, &ExpertsView::trainExpertRequested, this, &MainWindow::showTrainExpertDialog);
    connect(train_gate_, &TrainGateDialog::trainingRequested, worker_, &EngineWorker::trainGates);
    connect(train_gate_, &TrainGateDialog::clusterRequested, this, [this](ClusterGatesRequest r) {
        const WorkspaceView& ws = jobs_->workspace();
        r.workspace_root = ws.root;
        r.model_dir = ws.model_dir;
        r.experts_dir = ws.experts_dir;
        QMetaObject::invokeMethod(cluster_jobs_, [jobs = cluster_jobs_, r] { jobs->submitGates(r); });
    });
    connect(train_expert_, &TrainExpertDialog::trainingRequested, worker_, &EngineWorker::trainExpert);
    qRegisterMetaType<LibraryImportRequest>();
    qRegisterMetaType<LibraryImportProgressView>();
    qRegisterMetaType<LibraryImportOutcomeView>();
    import_library_ = new ImportLibraryDialog(this);
    connect(import_library_, &ImportLibraryDialog::importRequested, worker_, &EngineWorker::importLibrary);
    connect(import_library_, &ImportLibraryDialog::cancelRequested, this,
            [this] { worker_->requestCancel(); });
    connect(worker_, &EngineWorker::libraryImportProgress, import_library_,
            &ImportLibraryDialog::showProgress);
    connect(worker_, &EngineWorker::libraryImportFinished, import_library_,
            &ImportLibraryDialog::showOutcome);
    connect(worker_, &EngineWorker::libraryImportFinished, this, [this](const LibraryImportOutcomeView& o) {
        if (o.status == "finished") tabs_->setCurrentWidget(experts_view_);
    });
    for (TrainingDialog* dialog : std::initializer_list<TrainingDialog*>{train_gate_, train_expert_}) {
        // Direct, not queued: the flag must reach the job that is running on the engine thread now.
        connect(dialog, &TrainingDialog::cancelRequested, this, [this] { worker_->requestCancel(); });
        connect(worker_, &EngineWorker::trainingProgress, dialog, &TrainingDialog::showProgress);
        connect(worker_, &EngineWorker::trainingFinished, dialog, &TrainingDialog::showOutcome);
    }
    connect(worker_, &EngineWorker::trainingFinished, this, [this](const TrainingOutcomeView& o) {
        statusBar()->showMessage(o.status == "finished" ? tr("Training finished")
                                                        : tr("Training %1: %2").arg(o.status, o.message));
    });
    connect(tabs_, &QTabWidget::currentChanged, this,
            [this](int index) { QSettings().setValue("window/tab", tabs_->widget(index)->objectName()); });
}

void MainWindow::openStartupWorkspace() {
    RecentWorkspaces recent;
    QStringList gone;
    for (const QString& folder : recent.folders()) {
        if (QFileInfo(folder).isDir()) {
            openWorkspace(folder);
            break;
        }
        recent.remove(folder);
        gone << folder;
    }
    if (!gone.isEmpty())
        showError(tr("These workspaces no longer exist and were removed from the recent workspaces:\n%1")
                      .arg(gone.join("\n")));
    if (!recent.folders().isEmpty()) return;
    QString error;
    const QString demo = bundledDemoWorkspace(&error);
    if (!demo.isEmpty()) {
        openWorkspace(demo);
        return;
    }
    tabs_->setCurrentIndex(0);  // the Model tab, which asks for a workspace
    statusBar()->showMessage(error.isEmpty() ? tr("No workspace open: use File > Open workspace")
                                             : tr("The demo workspace cannot be opened: %1").arg(error));
}

void MainWindow::showWorkspace(const WorkspaceView& workspace) {
    RecentWorkspaces().add(workspace.root);
    workspace_root_ = workspace.root;
    setWindowTitle(
        tr("%1 - PHATGOOSE Workbench").arg(workspace.name.isEmpty() ? workspace.root : workspace.name));
    QStringList train_files;
    for (const WorkspaceTaskView& t : workspace.tasks)
        if (!t.train.isEmpty()) train_files << t.train;
    train_expert_->setDatasets(train_files);
    // An example to run at once: a held-out task's first, else any task's.
    QString example;
    for (const WorkspaceTaskView& t : workspace.tasks)
        if (!t.example_prompt.isEmpty() && (example.isEmpty() || t.role == "held-out")) {
            example = t.example_prompt;
            if (t.role == "held-out") break;
        }
    if (!example.isEmpty()) probe_->suggestPrompt(example);
}

void MainWindow::fillRecentMenu() {
    recent_menu_->clear();
    const QStringList folders = RecentWorkspaces().folders();
    for (const QString& folder : folders)
        recent_menu_->addAction(QDir::toNativeSeparators(folder), this,
                                [this, folder] { openRecent(folder); });
    if (folders.isEmpty()) recent_menu_->addAction(tr("(none yet)"))->setEnabled(false);
}

void MainWindow::openRecent(const QString& folder) {
    if (QFileInfo(folder).isDir()) {
        openWorkspace(folder);
        return;
    }
    RecentWorkspaces().remove(folder);
    showError(
        tr("The workspace %1 no longer exists; it was removed from the recent workspaces.").arg(folder));
}

TrainGateDialog* MainWindow::showTrainGateDialog(const QStringList& experts) {
    if (!train_gate_->isTraining()) {
        if (!experts.isEmpty())
            train_gate_->checkExperts(experts);
        else if (train_gate_->checkedExperts().isEmpty())
            train_gate_->checkExperts(experts_view_->selectedExperts());
    }
    train_gate_->show();
    train_gate_->raise();
    train_gate_->activateWindow();
    return train_gate_;
}

ImportLibraryDialog* MainWindow::showImportLibraryDialog() {
    if (!workspace_root_.isEmpty()) import_library_->setDefaultFolder(workspace_root_);
    import_library_->show();
    import_library_->raise();
    import_library_->activateWindow();
    return import_library_;
}

TrainExpertDialog* MainWindow::showTrainExpertDialog() {
    train_expert_->show();
    train_expert_->raise();
    train_expert_->activateWindow();
    return train_expert_;
}

void MainWindow::restoreLayout() {
    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray());
    const QString tab = settings.value("window/tab").toString();
    for (int i = 0; i < tabs_->count(); ++i)
        if (tabs_->widget(i)->objectName() == tab) tabs_->setCurrentIndex(i);
}

void MainWindow::saveLayout() const {
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState());
}
}  // namespace phatgoose::ui
