// The shell, offscreen, on a tiny workspace: opening it fills the Experts table with exactly the library's
// listing; a selected expert's recorded curves are plotted; a gate trained from the dialog is saved,
// recorded in workbench.sqlite and shown; a cancelled one leaves the gate file byte for byte as it was;
// a bad dataset fails readably; opened workspaces are remembered; a broken workspace is reported without
// blocking the window; a new expert trained from its dialog joins the library.
// With PHATGOOSE_SCREENSHOT_DIR set, the Experts tab and the gate dialog mid-training are saved there as
// experts.png and train_gate.png, on the workspace in PHATGOOSE_SCREENSHOT_WORKSPACE when set (the demo:
// PHATGOOSE_SCREENSHOT_WORKSPACE=resources/demo; nothing is written into it).
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <memory>

#include <nlohmann/json.hpp>

#include "experts/expert_library.h"
#include "experts/rthree_library.h"
#include "fixtures/cli_run.h"
#include "fixtures/files.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "fixtures/tiny_workspace.h"
#include "store/results_store.h"
#include "ui/engine_worker.h"
#include "ui/experts/expert_table_model.h"
#include "ui/experts/experts_view.h"
#include "ui/experts/import_library_dialog.h"
#include "ui/experts/train_expert_dialog.h"
#include "ui/experts/train_gate_dialog.h"
#include "ui/experts/training_progress_panel.h"
#include "ui/main_window.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/recent_workspaces.h"

using namespace phatgoose;
namespace fs = std::filesystem;
using phatgoose::testing::readFileBytes;

namespace {

ui::TrainingOutcomeView outcomeOf(QSignalSpy& spy) {
    return spy.takeFirst().at(0).value<ui::TrainingOutcomeView>();
}

QVariant cell(const QAbstractItemModel* m, int row, int column, int role = ui::ExpertTableModel::kRawRole) {
    return m->index(row, column).data(role);
}

int rowOf(const QAbstractItemModel* m, const QString& expert) {
    for (int r = 0; r < m->rowCount(); ++r)
        if (cell(m, r, ui::ExpertTableModel::Name).toString() == expert) return r;
    return -1;
}

void saveScreenshot(QWidget* widget, const QString& dir, const char* name) {
    QTest::qWait(300);  // layouts and queued replots settle first
    QVERIFY(widget->grab().save(QDir(dir).filePath(name)));
}

}  // namespace

class GuiTrainingTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    Workspace ws_;
    std::unique_ptr<ui::MainWindow> window_;

    ui::ExpertsView* experts() const { return window_->expertsView(); }
    const QAbstractItemModel* table() const { return experts()->table()->model(); }
    QString root() const { return QString::fromStdString(ws_.root.string()); }

private Q_SLOTS:
    void initTestCase() {
        // Settings of this suite only, never the user's.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("phatgoose-tests");
        QCoreApplication::setApplicationName("test_gui_training");
        QSettings().clear();
        ws_ = phatgoose::testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "workspace");
        window_ = std::make_unique<ui::MainWindow>();
        window_->resize(1200, 760);
        window_->show();
        QSignalSpy shown(experts(), &ui::ExpertsView::expertsShown);
        window_->openWorkspace(root());
        QVERIFY(shown.wait(60000));
        QCOMPARE(shown.first().first().toInt(), 3);
    }

    void cleanupTestCase() { window_.reset(); }

    void tableShowsTheLibraryListing() {
        const ExpertLibrary library =
            ExpertLibrary::open(ws_.experts_dir, phatgoose::testing::tinyConfig({.gated = true}));
        const std::vector<ExpertListing> listing = library.listing();
        const QAbstractItemModel* m = table();
        QCOMPARE(m->rowCount(), int(listing.size()));
        using C = ui::ExpertTableModel;
        for (const ExpertListing& l : listing) {
            const int r = rowOf(m, QString::fromStdString(l.name));
            QVERIFY(r >= 0);
            QCOMPARE(cell(m, r, C::Task).toString(), QString::fromStdString(l.task));
            QCOMPARE(cell(m, r, C::Rank).toLongLong(), l.rank);
            QCOMPARE(cell(m, r, C::Alpha).toDouble(), l.alpha);
            QStringList targets;
            for (const std::string& t : l.targets) targets << QString::fromStdString(t);
            QCOMPARE(cell(m, r, C::Targets).toString(), targets.join(' '));
            QCOMPARE(cell(m, r, C::Gate).toString(), l.has_gate ? QString("yes") : QString("no"));
            QCOMPARE(cell(m, r, C::GateLoss).toDouble(), l.gate_loss);
            QCOMPARE(cell(m, r, C::GateLoss, Qt::DisplayRole).toString(),
                     QString::number(l.gate_loss, 'f', 4));
            QCOMPARE(cell(m, r, C::TrainingSteps).toLongLong(), l.training_steps);
            QCOMPARE(cell(m, r, C::Modules).toLongLong(), l.modules);
        }
        // Sorting by a column reorders the rows by its value.
        experts()->table()->sortByColumn(C::Name, Qt::DescendingOrder);
        QCOMPARE(cell(m, 0, C::Name).toString(), QString("reverse"));
        experts()->table()->sortByColumn(C::Name, Qt::AscendingOrder);
        QCOMPARE(cell(m, 0, C::Name).toString(), QString("choose"));
    }

    void selectingAnExpertPlotsItsRecordedCurves() {
        QVERIFY(experts()->selectExpert("count"));
        QCustomPlot* plot = experts()->plot();
        const std::vector<double> expert_curve{3.0, 2.2, 1.8, 1.5}, gate_curve{1.6, 1.5, 1.4};
        for (auto [graph, curve] : {std::pair{0, &expert_curve}, std::pair{1, &gate_curve}}) {
            QCOMPARE(plot->graph(graph)->dataCount(), int(curve->size()));
            for (int i = 0; i < int(curve->size()); ++i) {
                QCOMPARE(plot->graph(graph)->data()->at(i)->key, double(i + 1));
                QCOMPARE(plot->graph(graph)->data()->at(i)->value, (*curve)[size_t(i)]);
            }
        }
    }

    void exportsTheTableAndThePlot() {
        const QString csv = tmp_.filePath("experts.csv");
        QString error;
        QVERIFY2(experts()->exportCsv(csv, &error), qPrintable(error));
        QFile file(csv);
        QVERIFY(file.open(QIODevice::ReadOnly | QIODevice::Text));
        const QStringList lines = QString::fromUtf8(file.readAll()).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 4);
        QVERIFY(lines[0].startsWith("Name,Task,Rank,Alpha,Targets,Gate,Gate loss"));
        QVERIFY(lines[1].startsWith("choose,choose,"));
        QVERIFY(experts()->savePlot(tmp_.filePath("curves.png")));
        QVERIFY(experts()->savePlot(tmp_.filePath("curves.pdf")));
        QVERIFY(QFileInfo(tmp_.filePath("curves.png")).size() > 1000);
        QVERIFY(QFileInfo(tmp_.filePath("curves.pdf")).size() > 1000);
        QVERIFY(!experts()->exportCsv(tmp_.filePath("no/such/folder/x.csv"), &error));
        QVERIFY(error.contains("x.csv"));
    }

    void trainingAGateSavesRecordsAndShowsIt() {
        const fs::path gate_file = ws_.experts_dir / "reverse" / "phatgoose_gate.safetensors";
        const std::string before = readFileBytes(gate_file);
        ui::TrainGateDialog* dialog = window_->showTrainGateDialog({"reverse"});
        QCOMPARE(dialog->checkedExperts(), QStringList{"reverse"});
        dialog->stepsBox()->setValue(6);
        dialog->batchBox()->setValue(4);
        QSignalSpy ended(dialog, &ui::TrainGateDialog::trainingEnded);
        QSignalSpy listed(experts(), &ui::ExpertsView::expertsShown);
        QTest::mouseClick(dialog->startButton(), Qt::LeftButton);
        QVERIFY(dialog->isTraining());
        QVERIFY(ended.wait(120000));
        const ui::TrainingOutcomeView outcome = outcomeOf(ended);
        QCOMPARE(outcome.status, QString("finished"));
        QCOMPARE(outcome.experts, QStringList{"reverse"});
        QCOMPARE(dialog->panel()->pointsFor("reverse"), 6);
        QVERIFY(!dialog->isTraining());

        // On disk: a new gate and its record.
        QVERIFY(readFileBytes(gate_file) != before);
        const LoraExpert saved =
            loadLoraExpert(ws_.experts_dir / "reverse", phatgoose::testing::tinyConfig({.gated = true}));
        QVERIFY(saved.gate_record.has_value());
        QCOMPARE(saved.gate_record->steps, int64_t(6));
        QCOMPARE(saved.gate_record->final_loss, outcome.final_loss);

        // In the results database: a finished train-gate run with the same curve.
        QCOMPARE(outcome.runs.size(), 1);
        ResultsStore store(ws_.database);
        const std::optional<RunRecord> run = store.run(outcome.runs.front());
        QVERIFY(run.has_value());
        QCOMPARE(QString::fromStdString(run->kind), QString("train-gate"));
        QCOMPARE(QString::fromStdString(run->status), QString("finished"));
        const std::vector<LossPoint> curve = store.lossCurve(run->id);
        QCOMPARE(curve.size(), size_t(6));
        for (size_t i = 0; i < curve.size(); ++i) {
            QCOMPARE(curve[i].expert, std::string("reverse"));
            QCOMPARE(curve[i].kind, std::string("gate"));
            QCOMPARE(curve[i].step, int64_t(i + 1));
            QCOMPARE(curve[i].loss, saved.gate_record->loss_curve[i]);
        }

        // In the table: the new final loss (the listing arrives before the outcome).
        QVERIFY(listed.count() >= 1);
        const int r = rowOf(table(), "reverse");
        QCOMPARE(cell(table(), r, ui::ExpertTableModel::GateLoss).toDouble(), outcome.final_loss);
        QVERIFY(experts()->selectExpert("reverse"));
        QCOMPARE(experts()->plot()->graph(1)->dataCount(), 6);
    }

    void cancellingSavesNothing() {
        const fs::path gate_file = ws_.experts_dir / "count" / "phatgoose_gate.safetensors";
        const std::string before = readFileBytes(gate_file);
        ui::TrainGateDialog* dialog = window_->showTrainGateDialog({"count"});
        dialog->stepsBox()->setValue(100000);
        QSignalSpy progress(dialog, &ui::TrainGateDialog::progressShown);
        QSignalSpy ended(dialog, &ui::TrainGateDialog::trainingEnded);
        dialog->start();
        // Well under way; the whole run would take many minutes.
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 40 || !ended.isEmpty(), 120000);
        QVERIFY(ended.isEmpty());
        QTest::mouseClick(dialog->cancelButton(), Qt::LeftButton);
        QVERIFY(ended.wait(60000));
        const ui::TrainingOutcomeView outcome = outcomeOf(ended);
        QCOMPARE(outcome.status, QString("cancelled"));
        QVERIFY(outcome.experts.isEmpty());
        QVERIFY(readFileBytes(gate_file) == before);
        QCOMPARE(outcome.runs.size(), 1);
        const std::optional<RunRecord> run = ResultsStore(ws_.database).run(outcome.runs.front());
        QVERIFY(run.has_value());
        QCOMPARE(QString::fromStdString(run->status), QString("cancelled"));
        const int r = rowOf(table(), "count");
        QCOMPARE(cell(table(), r, ui::ExpertTableModel::GateLoss).toDouble(), 1.4);  // the fixture's record
        dialog->hide();
    }

    void aBadDatasetFailsReadably() {
        ui::TrainGateDialog* dialog = window_->showTrainGateDialog({"choose"});
        dialog->setDataset(tmp_.filePath("missing.jsonl"));
        QSignalSpy ended(dialog, &ui::TrainGateDialog::trainingEnded);
        dialog->start();
        QVERIFY(ended.wait(60000));
        const ui::TrainingOutcomeView outcome = outcomeOf(ended);
        QCOMPARE(outcome.status, QString("failed"));
        QVERIFY2(outcome.message.contains("missing.jsonl"), qPrintable(outcome.message));
        dialog->setDataset({});
        dialog->hide();
        for (QMessageBox* box : dialog->findChildren<QMessageBox*>()) box->close();
    }

    void openedWorkspacesAreRemembered() {
        ui::RecentWorkspaces recent;
        QCOMPARE(recent.folders().value(0), QDir::cleanPath(root()));
        for (int i = 0; i < 10; ++i) recent.add(tmp_.filePath(QString("other%1").arg(i)));
        QCOMPARE(recent.folders().size(), ui::RecentWorkspaces::kLimit);
        QCOMPARE(recent.folders().front(), QDir::cleanPath(tmp_.filePath("other9")));
        recent.add(root());  // again: moves to the front, once
        QCOMPARE(recent.folders().front(), QDir::cleanPath(root()));
        QCOMPARE(recent.folders().count(QDir::cleanPath(root())), 1);
        recent.remove(tmp_.filePath("other9"));
        QVERIFY(!recent.folders().contains(QDir::cleanPath(tmp_.filePath("other9"))));
    }

    void startingWithoutAFolderOpensTheLastWorkspaceThatExists() {
        ui::RecentWorkspaces recent;
        recent.add(root());
        recent.add(tmp_.filePath("gone"));  // the newest entry, but deleted since
        ui::MainWindow window;
        QSignalSpy shown(window.expertsView(), &ui::ExpertsView::expertsShown);
        window.openStartupWorkspace();
        QVERIFY(shown.wait(60000));
        QCOMPARE(shown.first().first().toInt(), 3);
        QCOMPARE(recent.folders().front(), QDir::cleanPath(root()));
        QVERIFY(!recent.folders().contains(QDir::cleanPath(tmp_.filePath("gone"))));
    }

    void aBrokenWorkspaceIsReportedAndTheWindowStaysUsable() {
        ui::MainWindow window;
        window.show();
        QString message;
        connect(window.worker(), &ui::EngineWorker::failed, &window, [&](const QString& m) { message = m; });
        window.openWorkspace(tmp_.filePath("no-such-workspace"));
        QTRY_VERIFY_WITH_TIMEOUT(!message.isEmpty(), 30000);
        QVERIFY2(message.contains("no-such-workspace"), qPrintable(message));
        QTRY_VERIFY(window.findChild<QMessageBox*>() != nullptr);  // shown, without blocking
        QSignalSpy shown(window.expertsView(), &ui::ExpertsView::expertsShown);
        window.openWorkspace(root());
        QVERIFY(shown.wait(60000));
        QCOMPARE(shown.first().first().toInt(), 3);
    }

    // Last: it adds an expert to the library.
    void trainingANewExpertAddsItToTheLibrary() {
        ui::TrainExpertDialog* dialog = window_->showTrainExpertDialog();
        QCOMPARE(dialog->datasetBox()->count(), 3);  // the held-in tasks' train splits
        dialog->nameEdit()->setText("count");
        QSignalSpy ended(dialog, &ui::TrainExpertDialog::trainingEnded);
        dialog->start();
        QVERIFY(!dialog->isTraining());  // refused at once: the name is taken
        QVERIFY(dialog->panel()->statusLabel()->text().contains("already has an expert named 'count'"));

        dialog->nameEdit()->setText("fresh");
        dialog->datasetBox()->setCurrentText(QString::fromStdString(ws_.task("count")->train.string()));
        dialog->rankBox()->setValue(2);
        dialog->stepsBox()->setValue(4);
        dialog->batchBox()->setValue(4);
        QSignalSpy listed(experts(), &ui::ExpertsView::expertsShown);
        dialog->start();
        QVERIFY(ended.wait(120000));
        const ui::TrainingOutcomeView outcome = outcomeOf(ended);
        QCOMPARE(outcome.status, QString("finished"));
        const LoraExpert saved =
            loadLoraExpert(ws_.experts_dir / "fresh", phatgoose::testing::tinyConfig({.gated = true}));
        QCOMPARE(saved.settings.r, int64_t(2));
        QVERIFY(saved.training_record.has_value());
        QCOMPARE(saved.training_record->task, std::string("count"));
        QVERIFY(!listed.isEmpty());
        QCOMPARE(table()->rowCount(), 4);
        const int r = rowOf(table(), "fresh");
        QCOMPARE(cell(table(), r, ui::ExpertTableModel::TrainingSteps).toLongLong(), 4LL);
        QCOMPARE(cell(table(), r, ui::ExpertTableModel::Gate).toString(), QString("no"));
        const std::optional<RunRecord> run = ResultsStore(ws_.database).run(outcome.runs.value(0));
        QVERIFY(run.has_value());
        QCOMPARE(QString::fromStdString(run->kind), QString("train-expert"));
        QCOMPARE(QString::fromStdString(run->status), QString("finished"));
        // The library still opens as one (the new expert names the same base model as the others).
        QCOMPARE(ExpertLibrary::open(ws_.experts_dir, phatgoose::testing::tinyConfig({.gated = true}))
                     .experts()
                     .size(),
                 size_t(4));
        dialog->hide();
    }

    // Not a check: the pictures for the README, in a window of their own.
    // The workbench and `phatgoose train-gate --db` record training through the same backend code: the same
    // run kind and status, the same settings keys (and values, but for who started it), the same curve rows.
    void theCliAndTheDialogRecordGateRunsAlike() {
        ui::TrainGateDialog* dialog = window_->showTrainGateDialog({"reverse"});
        dialog->setDataset({});  // the expert's own training data, found by the backend
        dialog->stepsBox()->setValue(3);
        dialog->batchBox()->setValue(4);
        dialog->accumulationBox()->setValue(2);
        dialog->seedBox()->setValue(5);
        QSignalSpy ended(dialog, &ui::TrainGateDialog::trainingEnded);
        dialog->start();
        QVERIFY(ended.wait(120000));
        const ui::TrainingOutcomeView outcome = outcomeOf(ended);
        QCOMPARE(outcome.status, QString("finished"));
        QCOMPARE(outcome.runs.size(), 1);
        dialog->hide();

        ResultsStore store(ws_.database);
        const auto before = store.runs();
        const phatgoose::testing::CliRun cli = phatgoose::testing::runPhatgoose(
            {"train-gate", "--model", ws_.model_dir.string(), "--expert",
             (ws_.experts_dir / "reverse").string(), "--steps", "3", "--batch", "4", "--accum", "2", "--seed",
             "5", "--overwrite", "--db", ws_.database.string()});
        QVERIFY2(cli.code == 0, cli.err.c_str());
        const auto after = store.runs();
        QCOMPARE(after.size(), before.size() + 1);

        const RunRecord gui = *store.run(outcome.runs.front());
        const RunRecord cli_run = after.back();
        QCOMPARE(cli_run.kind, gui.kind);
        QCOMPARE(cli_run.status, gui.status);
        QCOMPARE(cli_run.version, gui.version);
        nlohmann::json a = nlohmann::json::parse(gui.settings), b = nlohmann::json::parse(cli_run.settings);
        QCOMPARE(a["source"].get<std::string>(), std::string("workbench"));
        QCOMPARE(b["source"].get<std::string>(), std::string("cli"));
        QVERIFY(fs::equivalent(a["model"].get<std::string>(), b["model"].get<std::string>()));
        for (nlohmann::json* j : {&a, &b}) j->erase("source"), j->erase("model");
        QCOMPARE(QString::fromStdString(b.dump()), QString::fromStdString(a.dump()));
        QCOMPARE(a["data"].get<std::string>(), ws_.task("reverse")->train.string());
        QCOMPARE(a["accumulation_steps"].get<int>(), 2);

        const std::vector<LossPoint> gui_curve = store.lossCurve(gui.id),
                                     cli_curve = store.lossCurve(cli_run.id);
        QCOMPARE(cli_curve.size(), size_t(3));
        QCOMPARE(gui_curve.size(), cli_curve.size());
        for (size_t i = 0; i < gui_curve.size(); ++i) {
            QCOMPARE(cli_curve[i].expert, gui_curve[i].expert);
            QCOMPARE(cli_curve[i].kind, gui_curve[i].kind);
            QCOMPARE(cli_curve[i].step, gui_curve[i].step);
            // Same data, seed and settings from a zero gate: the same losses.
            QVERIFY(std::abs(cli_curve[i].loss - gui_curve[i].loss) <= 1e-5 * std::abs(gui_curve[i].loss));
        }
    }

    // Both dialogs offer the backend's presets of their run kind: choosing one fills the form with its
    // settings (and what the form has no field for comes from it too); editing a field makes it "Custom".
    void presetsFillTheDialogs() {
        ui::TrainGateDialog* gate = window_->showTrainGateDialog({"reverse"});
        gate->choosePreset("quick");  // earlier tests edited the form: it said "Custom"
        QCOMPARE(gate->presetBox()->count(), int(trainingPresets(kTrainGateRun).size()));
        gate->choosePreset("paper");
        const TrainingOptions& paper = trainingPreset(kTrainGateRun, "paper").options;
        QCOMPARE(gate->stepsBox()->value(), int(paper.steps));
        QCOMPARE(gate->batchBox()->value(), 32);
        QCOMPARE(gate->accumulationBox()->value(), 32);
        QCOMPARE(gate->learningRateBox()->value(), paper.learning_rate);
        QCOMPARE(gate->dropoutBox()->value(), gate->dropoutBox()->minimum());  // the model's rate
        TrainingOptions o = gate->options();
        QCOMPARE(o.batch_size * o.accumulation_steps, int64_t(1024));
        QCOMPARE(o.max_input_tokens, int64_t(512));
        QVERIFY(o.dropout < 0);
        QVERIFY(gate->presetBox()->currentText().startsWith("Paper"));
        gate->accumulationBox()->setValue(4);
        gate->dropoutBox()->setValue(0.2);
        QCOMPARE(gate->presetBox()->currentText(), QString("Custom"));
        o = gate->options();
        QCOMPARE(o.accumulation_steps, int64_t(4));
        QCOMPARE(o.batch_size, int64_t(32));
        QCOMPARE(o.dropout, 0.2);
        gate->choosePreset("quick");
        QCOMPARE(gate->presetBox()->findText("Custom"), -1);
        QCOMPARE(gate->options().batch_size, gateTrainingDefaults().batch_size);
        QCOMPARE(gate->accumulationBox()->value(), 1);
        gate->hide();

        ui::TrainExpertDialog* expert = window_->showTrainExpertDialog();
        expert->choosePreset("paper");
        QCOMPARE(expert->stepsBox()->value(), int(trainingPreset(kTrainExpertRun, "paper").options.steps));
        QCOMPARE(expert->accumulationBox()->value(), 32);
        expert->choosePreset("quick");
        expert->hide();
    }

    // File > Import expert library with a folder of adapters: the engine opens it and the dialog says so;
    // a missing source is refused in the dialog, before the engine is asked anything.
    void importingAFolderOfAdaptersOpensIt() {
        ui::ImportLibraryDialog* dialog = window_->showImportLibraryDialog();
        dialog->setSource(tmp_.filePath("no-such-library"));
        dialog->start();
        QVERIFY(!dialog->isImporting());
        QVERIFY(dialog->statusLabel()->text().contains("Choose an existing"));
        dialog->setSource(QString::fromStdString(ws_.experts_dir.string()));
        const qint64 experts =
            ExpertLibrary::open(ws_.experts_dir, phatgoose::testing::tinyConfig({.gated = true}))
                .experts()
                .size();  // earlier cases may have added one
        QSignalSpy ended(dialog, &ui::ImportLibraryDialog::importEnded);
        QTest::mouseClick(dialog->importButton(), Qt::LeftButton);
        QVERIFY(ended.wait(60000));
        const auto outcome = ended.takeFirst().at(0).value<ui::LibraryImportOutcomeView>();
        QCOMPARE(outcome.status, QString("finished"));
        QCOMPARE(outcome.experts, experts);
        QVERIFY2(dialog->statusLabel()->text().contains(QString("Opened %1 expert(s)").arg(experts)),
                 qPrintable(dialog->statusLabel()->text()));
        if (const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR"); !dir.isEmpty())
            saveScreenshot(dialog, dir, "import_library.png");
        dialog->hide();
    }

    // File > Import expert library with an r-three best.pt (here one in the authors' layout, written by the
    // project's exporter): the dialog builds the library and the engine opens it; gates arrive bit for bit.
    void importingAnAuthorsCheckpointOpensIt() {
        const T5Config config = phatgoose::testing::tinyConfig({.gated = true});
        std::vector<LoraExpert> authors;
        for (int i = 0; i < 2; ++i) {
            authors.push_back(phatgoose::testing::randomExpert("authors" + std::to_string(i), config,
                                                               uint64_t(300 + i), /*rank=*/16));
            authors.back().settings.lora_alpha = 1.0;  // the authors' scale: 1/16
        }
        const fs::path best = fs::path(tmp_.path().toStdString()) / "best.pt";
        exportRThreeLibrary(authors, ws_.model_dir, best);
        const fs::path out = fs::path(tmp_.path().toStdString()) / "imported-rthree";

        ui::ImportLibraryDialog* dialog = window_->showImportLibraryDialog();
        dialog->setSource(QString::fromStdString(best.string()));
        dialog->outEdit()->setText(QString::fromStdString(out.string()));
        QSignalSpy ended(dialog, &ui::ImportLibraryDialog::importEnded);
        QTest::mouseClick(dialog->importButton(), Qt::LeftButton);
        QVERIFY(ended.wait(60000));
        const auto outcome = ended.takeFirst().at(0).value<ui::LibraryImportOutcomeView>();
        QVERIFY2(outcome.status == "finished", qPrintable(outcome.message));
        QCOMPARE(outcome.experts, qint64(2));
        QTRY_COMPARE_WITH_TIMEOUT(window_->expertsView()->experts().size(), qsizetype(2), 60000);
        const std::vector<LoraExpert> imported = ExpertLibrary::open(out, config).experts();
        QCOMPARE(int(imported.size()), 2);
        for (size_t i = 0; i < 2; ++i)
            for (const auto& [site, module] : authors[i].modules)
                QVERIFY(torch::equal(imported[i].modules.at(site).gate, module.gate));
        dialog->hide();
    }

    void screenshots() {
        // Without PHATGOOSE_SCREENSHOT_DIR the pictures are still made, into a folder that is thrown away.
        QTemporaryDir scratch;
        const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR", scratch.path());
        const QString workspace = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_WORKSPACE", root());
        ui::MainWindow window;
        window.resize(1280, 800);
        window.show();
        QSignalSpy shown(window.expertsView(), &ui::ExpertsView::expertsShown);
        window.openWorkspace(workspace);
        QVERIFY(shown.wait(120000));
        window.tabs()->setCurrentWidget(window.expertsView());
        const QString pick = window.expertsView()->experts().value(1).name;
        QVERIFY(window.expertsView()->selectExpert(pick));
        saveScreenshot(&window, dir, "experts.png");

        ui::TrainGateDialog* dialog = window.showTrainGateDialog({pick});
        dialog->setSaving(false);  // a picture must not change the workspace
        QSignalSpy progress(dialog, &ui::TrainGateDialog::progressShown);
        QSignalSpy ended(dialog, &ui::TrainGateDialog::trainingEnded);
        dialog->start();
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 60 || !ended.isEmpty(), 300000);
        saveScreenshot(dialog, dir, "train_gate.png");
        dialog->cancel();
        QVERIFY(ended.wait(60000));
        QVERIFY(QFileInfo(QDir(dir).filePath("train_gate.png")).size() > 10000);
    }
};

QTEST_MAIN(GuiTrainingTest)
#include "test_gui_training.moc"
