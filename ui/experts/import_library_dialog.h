#pragma once
// File > Import expert library: the authors' released r-three best.pt (converted into a library of PEFT
// folders with their gates, written beside and renamed into place) or a folder of PEFT adapters
// (adapter_model.safetensors or .bin, opened as it is). Progress and Cancel while the engine works; the
// library then opens in the Experts tab.
#include <QDialog>

#include "ui/engine_messages.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;

namespace phatgoose::ui {

class ImportLibraryDialog : public QDialog {
    Q_OBJECT
public:
    explicit ImportLibraryDialog(QWidget* parent = nullptr);

    // Where a new library goes by default (the workspace's folder, else the home folder).
    void setDefaultFolder(const QString& folder) { default_folder_ = folder; }
    void setSource(const QString& source);
    QLineEdit* sourceEdit() const { return source_; }
    QLineEdit* outEdit() const { return out_; }
    QPushButton* importButton() const { return import_; }
    QPushButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return progress_; }
    QLabel* statusLabel() const { return status_; }
    bool isImporting() const { return importing_; }

public Q_SLOTS:
    void start();
    void showProgress(const phatgoose::ui::LibraryImportProgressView& progress);
    void showOutcome(const phatgoose::ui::LibraryImportOutcomeView& outcome);

Q_SIGNALS:
    void importRequested(const phatgoose::ui::LibraryImportRequest& request);
    void cancelRequested();  // connect directly (not queued) to EngineWorker::requestCancel
    void importEnded(const phatgoose::ui::LibraryImportOutcomeView& outcome);

private:
    void browseFile();
    void browseFolder();
    void browseOut();
    void setImporting(bool importing);
    void updateInputs();
    QString default_folder_;
    QLineEdit* source_;
    QLineEdit* out_;
    QCheckBox* bf16_;
    QPushButton* import_;
    QPushButton* cancel_;
    QProgressBar* progress_;
    QLabel* status_;
    QList<QWidget*> inputs_;
    bool importing_ = false;
};

}  // namespace phatgoose::ui
