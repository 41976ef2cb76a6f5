#include "ui/main_window.h"

#include <QApplication>
#include <QFileDialog>
#include <QFormLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>

#include "ui/engine_worker.h"

namespace phatgoose::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    qRegisterMetaType<ModelSummaryView>();
    setWindowTitle(tr("PHATGOOSE Workbench"));
    resize(900, 560);
    auto* central = new QWidget(this);
    form_ = new QFormLayout(central);
    placeholder_ = new QLabel(tr("Open a T5 model folder (File > Open model folder) to see its summary."), central);
    form_->addRow(placeholder_);
    setCentralWidget(central);
    buildMenus();

    worker_ = new EngineWorker;
    worker_->moveToThread(&engine_thread_);
    connect(&engine_thread_, &QThread::finished, worker_, &QObject::deleteLater);
    connect(this, &MainWindow::modelRequested, worker_, &EngineWorker::openModel);
    connect(worker_, &EngineWorker::busy, this, [this](const QString& what) { statusBar()->showMessage(what); });
    connect(worker_, &EngineWorker::modelOpened, this, &MainWindow::showSummary);
    connect(worker_, &EngineWorker::failed, this, &MainWindow::showError);
    engine_thread_.start();
    statusBar()->showMessage(tr("Ready"));
}

MainWindow::~MainWindow() {
    engine_thread_.quit();
    engine_thread_.wait();
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open model folder..."), QKeySequence::Open, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a T5 model folder"));
        if (!dir.isEmpty()) openModel(dir);
    });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, qApp, &QApplication::quit);
}

void MainWindow::openModel(const QString& folder) { Q_EMIT modelRequested(folder); }

void MainWindow::showSummary(const ModelSummaryView& s) {
    while (form_->rowCount() > 0) form_->removeRow(0);
    placeholder_ = nullptr;
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
    QMessageBox::warning(this, tr("Could not open the model"), message);
}

}  // namespace phatgoose::ui
