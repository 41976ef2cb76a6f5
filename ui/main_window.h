#pragma once
#include <QMainWindow>
#include <QThread>

class QFormLayout;
class QLabel;

namespace phatgoose::ui {

class EngineWorker;
struct ModelSummaryView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;
    void openModel(const QString& folder);

Q_SIGNALS:
    void modelRequested(const QString& folder);

private:
    void buildMenus();
    void showSummary(const ModelSummaryView& summary);
    void showError(const QString& message);
    QThread engine_thread_;
    EngineWorker* worker_ = nullptr;
    QFormLayout* form_ = nullptr;
    QLabel* placeholder_ = nullptr;
};

}  // namespace phatgoose::ui
