#include "ui/experts/import_library_dialog.h"

#include <QCheckBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>

namespace phatgoose::ui {

namespace {

QHBoxLayout* row(QWidget* main, std::initializer_list<QWidget*> buttons) {
    auto* layout = new QHBoxLayout;
    layout->addWidget(main, 1);
    for (QWidget* b : buttons) layout->addWidget(b);
    return layout;
}

}  // namespace

ImportLibraryDialog::ImportLibraryDialog(QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("Import expert library"));
    source_ = new QLineEdit(this);
    source_->setPlaceholderText(tr("an r-three best.pt, or a folder of PEFT adapters"));
    auto* file = new QPushButton(tr("File..."), this);
    auto* folder = new QPushButton(tr("Folder..."), this);
    out_ = new QLineEdit(this);
    out_->setPlaceholderText(tr("a new folder for the imported experts"));
    auto* out_browse = new QPushButton(tr("Browse..."), this);
    bf16_ = new QCheckBox(tr("Store the experts as BF16 (half the disk; computed in float32)"), this);
    auto* form = new QFormLayout;
    form->addRow(tr("Source"), row(source_, {file, folder}));
    form->addRow(tr("Library folder"), row(out_, {out_browse}));
    form->addRow(QString(), bf16_);
    auto* hint =
        new QLabel(tr("A best.pt of the authors' released libraries (r-three P3_Phatgoose, FLAN_Phatgoose) "
                      "becomes one PEFT folder per expert with its gate; the base model must be the one "
                      "it was trained on. A folder of PEFT adapters opens as it is."),
                   this);
    hint->setWordWrap(true);
    import_ = new QPushButton(tr("Import"), this);
    cancel_ = new QPushButton(tr("Cancel import"), this);
    auto* close = new QPushButton(tr("Close"), this);
    for (QPushButton* b : {file, folder, out_browse, import_, cancel_, close}) b->setAutoDefault(false);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(import_);
    buttons->addWidget(cancel_);
    buttons->addStretch(1);
    buttons->addWidget(close);
    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1);
    progress_->setValue(0);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(hint);
    layout->addLayout(form);
    layout->addLayout(buttons);
    layout->addWidget(progress_);
    layout->addWidget(status_);
    layout->addStretch(1);
    inputs_ = {source_, file, folder, out_, out_browse, bf16_};
    connect(file, &QPushButton::clicked, this, &ImportLibraryDialog::browseFile);
    connect(folder, &QPushButton::clicked, this, &ImportLibraryDialog::browseFolder);
    connect(out_browse, &QPushButton::clicked, this, &ImportLibraryDialog::browseOut);
    connect(source_, &QLineEdit::textChanged, this, &ImportLibraryDialog::updateInputs);
    connect(import_, &QPushButton::clicked, this, &ImportLibraryDialog::start);
    connect(cancel_, &QPushButton::clicked, this, [this] {
        status_->setText(tr("Cancelling after the current expert ..."));
        Q_EMIT cancelRequested();
    });
    connect(close, &QPushButton::clicked, this, &QDialog::hide);
    setImporting(false);
    resize(640, 300);
}

void ImportLibraryDialog::setSource(const QString& source) {
    source_->setText(source);
    // A checkpoint's library goes beside it by default, named after its folder ("P3_Phatgoose").
    const QFileInfo info(source);
    if (out_->text().isEmpty() && info.isFile()) {
        const QString base = default_folder_.isEmpty() ? info.absolutePath() : default_folder_;
        out_->setText(QDir(base).filePath(info.dir().dirName() + "_experts"));
    }
}

void ImportLibraryDialog::browseFile() {
    const QString file =
        QFileDialog::getOpenFileName(this, tr("The library's checkpoint"), source_->text(),
                                     tr("PyTorch checkpoints (*.pt *.bin *.pth);;All files (*)"));
    if (!file.isEmpty()) setSource(file);
}

void ImportLibraryDialog::browseFolder() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("A folder of PEFT adapter folders"));
    if (!dir.isEmpty()) setSource(dir);
}

void ImportLibraryDialog::browseOut() {
    const QString dir = QFileDialog::getSaveFileName(this, tr("The new library folder"),
                                                     out_->text().isEmpty() ? default_folder_ : out_->text());
    if (!dir.isEmpty()) out_->setText(dir);
}

void ImportLibraryDialog::updateInputs() {
    const bool folder = QFileInfo(source_->text()).isDir();
    out_->setEnabled(!importing_ && !folder);
    bf16_->setEnabled(!importing_ && !folder);
}

void ImportLibraryDialog::setImporting(bool importing) {
    importing_ = importing;
    for (QWidget* w : inputs_) w->setEnabled(!importing);
    import_->setEnabled(!importing);
    cancel_->setEnabled(importing);
    updateInputs();
}

void ImportLibraryDialog::start() {
    if (importing_) return;
    const QString source = source_->text().trimmed();
    const QFileInfo info(source);
    QString problem;
    if (source.isEmpty() || !info.exists())
        problem = tr("Choose an existing best.pt or a folder of PEFT adapters.");
    else if (info.isFile() && out_->text().trimmed().isEmpty())
        problem = tr("Choose a folder for the imported library.");
    else if (info.isFile() && QFileInfo::exists(out_->text().trimmed()))
        problem = tr("%1 already exists; choose a new folder for the imported library.").arg(out_->text());
    if (!problem.isEmpty()) {
        status_->setText(problem);
        return;
    }
    setImporting(true);
    progress_->setRange(0, 0);  // busy until the first expert is done
    status_->setText(tr("Reading %1 ...").arg(info.fileName()));
    Q_EMIT importRequested({.source = source, .out = out_->text().trimmed(), .bf16 = bf16_->isChecked()});
}

void ImportLibraryDialog::showProgress(const LibraryImportProgressView& p) {
    if (!importing_) return;
    progress_->setRange(0, int(p.experts_total));
    progress_->setValue(int(p.experts_done));
    status_->setText(tr("%1 of %2 experts, %3 of %4 GB read")
                         .arg(p.experts_done)
                         .arg(p.experts_total)
                         .arg(p.gb_read, 0, 'f', 2)
                         .arg(p.gb_total, 0, 'f', 2));
}

void ImportLibraryDialog::showOutcome(const LibraryImportOutcomeView& o) {
    if (!importing_) return;
    setImporting(false);
    progress_->setRange(0, 1);
    progress_->setValue(o.status == "finished" ? 1 : 0);
    if (o.status == "finished") {
        QString text = tr("Opened %n expert(s) from %1.", nullptr, int(o.experts)).arg(o.library);
        if (!o.warnings.isEmpty()) text += "\n" + tr("Warning: %1").arg(o.warnings.join("\n"));
        status_->setText(text);
    } else if (o.status == "cancelled") {
        status_->setText(tr("Cancelled; no library was written."));
    } else {
        status_->setText(tr("Import failed: %1").arg(o.message));
    }
    Q_EMIT importEnded(o);
}

}  // namespace phatgoose::ui
