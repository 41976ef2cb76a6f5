#include "ui/main_window.h"

#include <QApplication>
#include <QFileDialog>
#include <QFormLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>
#include <QTabWidget>

#include "ui/engine_worker.h"
#include "ui/probe_view.h"

namespace phatgoose::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    qRegisterMetaType<WorkspaceView>();
    qRegisterMetaType<ModelSummaryView>();
    qRegisterMetaType<ProbeRequest>();
    qRegisterMetaType<ProbeResult>();
    setWindowTitle(tr("PHATGOOSE Workbench"));
    resize(1100, 700);
    tabs_ = new QTabWidget(this);
    auto* summary = new QWidget(tabs_);
    form_ = new QFormLayout(summary);
    form_->addRow(
        new QLabel(tr("Open a T5 model folder (File > Open model folder) to see its summary."), summary));
    probe_ = new ProbeView(tabs_);
    tabs_->addTab(summary, tr("Model"));
    tabs_->addTab(probe_, tr("Prompt probe"));
    setCentralWidget(tabs_);
    library_status_ = new QLabel(tr("no experts"), this);
    statusBar()->addPermanentWidget(library_status_);
    buildMenus();
    connectWorker();
    statusBar()->showMessage(tr("Ready"));
}

MainWindow::~MainWindow() {
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
        statusBar()->showMessage(tr("Done"));
    });
    connect(worker_, &EngineWorker::failed, this, &MainWindow::showError);
    engine_thread_.start();
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open workspace..."), QKeySequence::Open, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a workspace folder"));
        if (!dir.isEmpty()) openWorkspace(dir);
    });
    file->addAction(tr("Open &model folder..."), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a T5 model folder"));
        if (!dir.isEmpty()) openModel(dir);
    });
    file->addAction(tr("Open &expert library..."), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open an expert library"));
        if (!dir.isEmpty()) openLibrary(dir);
    });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, qApp, &QApplication::quit);
}

void MainWindow::openWorkspace(const QString& folder) {
    Q_EMIT workspaceRequested(folder);
}
void MainWindow::openModel(const QString& folder) {
    Q_EMIT modelRequested(folder);
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
    QMessageBox::warning(this, tr("PHATGOOSE Workbench"), message);
}

}  // namespace phatgoose::ui
