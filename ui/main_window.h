#pragma once
#include <QMainWindow>
#include <QThread>

class QFormLayout;
class QLabel;
class QTabWidget;

namespace phatgoose::ui {

class EngineWorker;
class ProbeView;
struct ModelSummaryView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;
    void openWorkspace(const QString& folder);
    void openModel(const QString& folder);
    void openLibrary(const QString& folder);
    ProbeView* probeView() const { return probe_; }
    QTabWidget* tabs() const { return tabs_; }

Q_SIGNALS:
    void workspaceRequested(const QString& folder);
    void modelRequested(const QString& folder);
    void libraryRequested(const QString& folder);

private:
    void buildMenus();
    void connectWorker();
    void showSummary(const ModelSummaryView& summary);
    void showError(const QString& message);
    QThread engine_thread_;
    EngineWorker* worker_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    QFormLayout* form_ = nullptr;
    ProbeView* probe_ = nullptr;
    QLabel* library_status_ = nullptr;
};

}  // namespace phatgoose::ui
