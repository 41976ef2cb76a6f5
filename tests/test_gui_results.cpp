// The Results view with real widgets, offscreen: a tiny workspace whose database holds a known evaluation
// run; the table, filters, chart and drill-down must show exactly what is stored. Then evaluations started
// from the view (one finished, checked against the backend Evaluator; one cancelled), CSV and chart
// exports, and a database file that is not SQLite.
#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QImage>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "error.h"
#include "eval/evaluator.h"
#include "experts/expert_library.h"
#include "fixtures/tiny_workspace.h"
#include "model/t5_loader.h"
#include "store/results_store.h"
#include "ui/analysis/routing_analysis_view.h"
#include "ui/main_window.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/probe/probe_view.h"
#include "ui/probe/routing_method_picker.h"
#include "ui/results/accuracy_chart.h"
#include "ui/results/new_evaluation_dialog.h"
#include "ui/results/predictions_table_model.h"
#include "ui/results/results_table_model.h"
#include "ui/results/results_view.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

constexpr int kWaitMs = 120000;

// RFC 4180, enough for what the view writes: quoted fields may hold commas, quotes and line breaks.
QList<QStringList> parseCsv(const QString& text) {
    QList<QStringList> rows;
    QStringList row;
    QString field;
    bool quoted = false;
    for (int i = 0; i < text.size(); ++i) {
        const QChar c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
                field += '"', ++i;
            else if (c == '"')
                quoted = false;
            else
                field += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            row << field, field.clear();
        } else if (c == '\n') {
            row << field, field.clear();
            rows << row, row.clear();
        } else {
            field += c;
        }
    }
    return rows;
}

QString readAll(const QString& file) {
    QFile f(file);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return QString::fromUtf8(f.readAll());
}

QString q(const std::string& s) {
    return QString::fromStdString(s);
}

const char* const kMethods[] = {"base", "merge", "phatgoose"};
const char* const kDatasets[] = {"reverse", "count", "choose", "opposite"};  // the last is held out

}  // namespace

class ResultsGuiTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    Workspace ws_;
    int64_t stored_run_ = 0;
    std::vector<MetricRecord> stored_metrics_;
    std::vector<PredictionRecord> stored_predictions_;

    // Opens `folder` in `window` and waits for the Results view to show what it read.
    static ui::ResultsView* open(ui::MainWindow& window, const fs::path& folder) {
        ui::ResultsView* view = window.resultsView();
        QSignalSpy shown(view, &ui::ResultsView::resultsShown);
        window.openWorkspace(QString::fromStdString(folder.string()));
        if (!shown.wait(kWaitMs)) return nullptr;
        return view;
    }

    static int rowOf(const ui::ResultsView* view, const QString& method, const QString& dataset) {
        const QAbstractItemModel* m = view->metricsTable()->model();
        for (int r = 0; r < m->rowCount(); ++r)
            if (m->index(r, ui::ResultsTableModel::Method).data().toString() == method &&
                m->index(r, ui::ResultsTableModel::Dataset).data().toString() == dataset)
                return r;
        return -1;
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(tmp_.isValid());
        ws_ = testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "ws");
        ResultsStore store(ws_.database);
        // A training run first: the Results view lists evaluation runs only.
        store.finishRun(store.beginRun("train-gate", "{}", "test"), RunStatus::Finished);
        stored_run_ = store.beginRun("eval", R"({"methods":["base","merge","phatgoose"],"top_k":2})", "test");
        int cell = 0;
        for (const char* method : kMethods) {
            const int64_t k = std::string(method) == "phatgoose" ? 2 : 0;
            for (const char* dataset : kDatasets) {
                const bool ranked = std::string(dataset) == "choose" || std::string(dataset) == "opposite";
                const MetricRecord m{
                    method, k, dataset, ranked ? "accuracy" : "exact_match", 12.5 + 7.25 * cell++, 6};
                std::vector<PredictionRecord> predictions;
                for (int64_t i = 0; i < 3; ++i)
                    predictions.push_back({method, k, dataset, i,
                                           "input, number " + std::to_string(i) + " of " + dataset,
                                           "target \"" + std::to_string(i) + "\"",
                                           "prediction " + std::to_string(i), i != 1, -0.5 * double(i + 1)});
                store.addCell(stored_run_, m, predictions);
                stored_metrics_.push_back(m);
                stored_predictions_.insert(stored_predictions_.end(), predictions.begin(), predictions.end());
            }
        }
        store.finishRun(stored_run_, RunStatus::Finished);
    }

    void tableShowsTheStoredRun() {
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        QCOMPARE(view->errorText(), QString());
        // The one evaluation run (the training run is not listed), then "All runs".
        QCOMPARE(view->runSelector()->count(), 2);
        QCOMPARE(view->shownRun(), qint64(stored_run_));
        QVERIFY(view->runSelector()->currentText().contains("finished"));

        const QAbstractItemModel* table = view->metricsTable()->model();
        QCOMPARE(table->rowCount(), int(stored_metrics_.size()));
        using C = ui::ResultsTableModel;
        for (int r = 0; r < table->rowCount(); ++r) {
            const MetricRecord& m = stored_metrics_[size_t(r)];
            auto cell = [&](int column) { return table->index(r, column).data(C::kRawRole); };
            QCOMPARE(cell(C::Run).toLongLong(), qint64(stored_run_));
            QCOMPARE(cell(C::Method).toString(), q(m.method));
            QCOMPARE(cell(C::TopK).toLongLong(), qint64(m.top_k));
            QCOMPARE(cell(C::Dataset).toString(), q(m.dataset));
            QCOMPARE(cell(C::Role).toString(), QString(m.dataset == "opposite" ? "held-out" : "held-in"));
            QCOMPARE(cell(C::Metric).toString(), q(m.metric));
            QCOMPARE(cell(C::Value).toDouble(), m.value);
            QCOMPARE(cell(C::Examples).toLongLong(), qint64(m.examples));
            QCOMPARE(table->index(r, C::Value).data().toString(), QString::number(m.value, 'f', 1));
        }

        // Filters: free text, method, dataset, and all three together.
        view->textFilter()->setText("OPPOSITE");
        QCOMPARE(table->rowCount(), 3);
        view->textFilter()->setText("held-out");
        QCOMPARE(table->rowCount(), 3);
        view->textFilter()->clear();
        QCOMPARE(view->methodFilter()->count(), 4);  // "All methods" + 3
        view->methodFilter()->setCurrentIndex(view->methodFilter()->findData("phatgoose (k=2)"));
        QCOMPARE(table->rowCount(), 4);
        for (int r = 0; r < 4; ++r)
            QCOMPARE(table->index(r, C::Method).data().toString(), QString("phatgoose"));
        view->datasetFilter()->setCurrentIndex(view->datasetFilter()->findData("count"));
        QCOMPARE(table->rowCount(), 1);
        QCOMPARE(table->index(0, C::Value).data(C::kRawRole).toDouble(), stored_metrics_[9].value);
        view->textFilter()->setText("merge");
        QCOMPARE(table->rowCount(), 0);
        view->textFilter()->clear();
        view->methodFilter()->setCurrentIndex(0);
        view->datasetFilter()->setCurrentIndex(0);
        QCOMPARE(table->rowCount(), 12);

        // Sorting by value sorts numbers as numbers.
        view->metricsTable()->sortByColumn(C::Value, Qt::DescendingOrder);
        QCOMPARE(table->index(0, C::Value).data(C::kRawRole).toDouble(), stored_metrics_.back().value);
        QCOMPARE(table->index(11, C::Value).data(C::kRawRole).toDouble(), stored_metrics_.front().value);
    }

    void chartShowsOneSeriesPerMethod() {
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        ui::AccuracyChart* chart = view->chart();
        QCOMPARE(chart->barSeriesCount(), 3);
        // Held-in datasets, the held-out one, then the two averages.
        const QStringList expected_groups{"reverse",  "count",       "choose",
                                          "opposite", "held-in avg", "held-out avg"};
        QStringList groups;
        for (const ui::AccuracyGroup& g : chart->data().groups) groups << g.label;
        QCOMPARE(groups, expected_groups);
        QVERIFY(chart->tickLabels().at(3).contains("held-out"));
        QVERIFY(!chart->tickLabels().at(0).contains("held-out"));
        int m = 0;
        for (const char* method : kMethods) {
            const QString key = ui::methodKey(method, std::string(method) == "phatgoose" ? 2 : 0);
            QCPBars* bars = chart->bars(key);
            QVERIFY2(bars, qPrintable(key));
            QCOMPARE(bars->data()->size(), 6);
            double held_in = 0;
            for (int d = 0; d < 4; ++d) {
                const double stored = stored_metrics_[size_t(m * 4 + d)].value;
                QCOMPARE(bars->data()->at(d)->key, double(d));
                QCOMPARE(bars->data()->at(d)->value, stored);
                if (d < 3) held_in += stored;
            }
            QCOMPARE(bars->data()->at(4)->value, held_in / 3);
            QCOMPARE(bars->data()->at(5)->value, stored_metrics_[size_t(m * 4 + 3)].value);
            ++m;
        }
    }

    // "Open in probe": the selected example's input runs in the probe with the result's method and k.
    void openInProbeRunsTheExample() {
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        const int row = rowOf(view, "phatgoose", "count");
        QVERIFY(row >= 0);
        view->metricsTable()->setCurrentIndex(view->metricsTable()->model()->index(row, 0));
        QVERIFY(!view->openInProbeAction()->isEnabled());  // no example selected yet
        const QAbstractItemModel* table = view->predictionsTable()->model();
        view->predictionsTable()->setCurrentIndex(table->index(1, ui::PredictionsTableModel::Input));
        QVERIFY(view->openInProbeAction()->isEnabled());
        const QString input = table->index(1, ui::PredictionsTableModel::Input)
                                  .data(ui::PredictionsTableModel::kRawRole)
                                  .toString();
        ui::ProbeView* probe = window.probeView();
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        view->openInProbeAction()->trigger();
        QCOMPARE(window.tabs()->currentWidget(), static_cast<QWidget*>(probe));
        QVERIFY(shown.wait(kWaitMs));
        QCOMPARE(probe->prompt(), input);
        QCOMPARE(probe->trace().method, std::string("phatgoose"));
        QCOMPARE(probe->trace().top_k, int64_t(2));
        // "base" is a routing of the library too (no experts): it opens like any other method.
        const int base_row = rowOf(view, "base", "count");
        QVERIFY(base_row >= 0);
        window.tabs()->setCurrentWidget(view);
        view->metricsTable()->setCurrentIndex(view->metricsTable()->model()->index(base_row, 0));
        view->predictionsTable()->setCurrentIndex(table->index(0, ui::PredictionsTableModel::Input));
        QVERIFY(view->openInProbeAction()->isEnabled());
    }

    // "Analyse routing" on a result row: the routing analysis of that row's dataset file (from the run's
    // recorded settings) under its method, k and exclusions runs once and is stored; asked again, the stored
    // run is shown instead of a second one; methods that do not route (merge) cannot ask.
    void analyseRoutingOfAResultRow() {
        const fs::path root = fs::path(tmp_.path().toStdString()) / "ws-analyse";
        fs::copy(ws_.root, root, fs::copy_options::recursive);
        for (const char* suffix : {"", "-wal", "-shm"})  // a fresh database for this test's runs
            fs::remove(root / (fs::path(ws_.database).filename().string() + suffix));
        const Workspace ws = openWorkspace(root);
        const WorkspaceTask& count = *std::find_if(ws.tasks.begin(), ws.tasks.end(),
                                                   [](const WorkspaceTask& t) { return t.name == "count"; });
        {
            ResultsStore store(ws.database);
            const nlohmann::json settings{{"methods", {"phatgoose", "merge"}},
                                          {"top_k", 2},
                                          {"exclude", {"reverse"}},
                                          {"datasets", {{{"name", "count"}, {"path", count.test.string()}}}}};
            const int64_t run = store.beginRun("eval", settings.dump(), "test");
            store.addCell(run, {"phatgoose", 2, "count", "exact_match", 50.0, 2}, {});
            store.addCell(run, {"merge", 0, "count", "exact_match", 40.0, 2}, {});
            store.finishRun(run, RunStatus::Finished);
        }
        ui::MainWindow window;
        ui::ResultsView* view = open(window, root);
        QVERIFY(view);
        ui::RoutingAnalysisView* analysis = window.analysisView();
        QVERIFY(QTest::qWaitFor([&] { return analysis->methodPicker()->expertBox()->count() > 0; }, kWaitMs));
        view->metricsTable()->setCurrentIndex(
            view->metricsTable()->model()->index(rowOf(view, "merge", "count"), 0));
        QVERIFY(!view->analyseRoutingAction()->isEnabled());
        view->metricsTable()->setCurrentIndex(
            view->metricsTable()->model()->index(rowOf(view, "phatgoose", "count"), 0));
        QVERIFY(view->analyseRoutingAction()->isEnabled());
        view->analyseRoutingAction()->trigger();
        QCOMPARE(window.tabs()->currentWidget(), static_cast<QWidget*>(analysis));
        QTRY_COMPARE_WITH_TIMEOUT(analysis->runBox()->count(), 1, kWaitMs);
        QTRY_VERIFY_WITH_TIMEOUT(analysis->newAnalysisButton()->isEnabled(), kWaitMs);
        const RoutingStatistics& shown = analysis->statistics();
        QCOMPARE(shown.method, std::string("phatgoose"));
        QCOMPARE(shown.top_k, int64_t(2));
        QCOMPARE(shown.expert_names.size(), size_t(2));  // the run's exclusion is kept
        QVERIFY(std::find(shown.expert_names.begin(), shown.expert_names.end(), "reverse") ==
                shown.expert_names.end());
        QCOMPARE(shown.datasets.size(), size_t(1));
        QCOMPARE(shown.datasets[0].name, std::string("count"));
        QCOMPARE(shown.datasets[0].examples, int64_t(loadJsonl(count.test).examples.size()));

        window.tabs()->setCurrentWidget(view);
        view->analyseRoutingAction()->trigger();
        QCOMPARE(analysis->runBox()->count(), 1);  // shown, not run again
        QVERIFY(analysis->newAnalysisButton()->isEnabled());
        size_t route_stats = 0;
        for (const RunRecord& r : ResultsStore(ws.database).runs()) route_stats += r.kind == "route-stats";
        QCOMPARE(route_stats, size_t(1));
    }

    void drillDownShowsTheStoredPredictions() {
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        const int row = rowOf(view, "phatgoose", "count");
        QVERIFY(row >= 0);
        QSignalSpy shown(view, &ui::ResultsView::predictionsShown);
        view->metricsTable()->setCurrentIndex(view->metricsTable()->model()->index(row, 0));
        QCOMPARE(shown.count(), 1);

        std::vector<PredictionRecord> expected;
        for (const PredictionRecord& p : stored_predictions_)
            if (p.method == "phatgoose" && p.dataset == "count") expected.push_back(p);
        const QAbstractItemModel* table = view->predictionsTable()->model();
        using P = ui::PredictionsTableModel;
        QCOMPARE(table->rowCount(), int(expected.size()));
        for (int r = 0; r < table->rowCount(); ++r) {
            const PredictionRecord& p = expected[size_t(r)];
            auto cell = [&](int column) { return table->index(r, column).data(P::kRawRole); };
            QCOMPARE(cell(P::Example).toLongLong(), qint64(p.example_index));
            QCOMPARE(cell(P::Input).toString(), q(p.input));
            QCOMPARE(cell(P::Target).toString(), q(p.target));
            QCOMPARE(cell(P::Prediction).toString(), q(p.prediction));
            QCOMPARE(cell(P::Correct).toBool(), p.correct);
            QCOMPARE(cell(P::Score).toDouble(), p.score);
        }
        view->outcomeFilter()->setCurrentIndex(
            view->outcomeFilter()->findData(int(ui::PredictionsFilter::Outcome::Incorrect)));
        QCOMPARE(table->rowCount(), 1);
        QCOMPARE(table->index(0, P::Example).data(P::kRawRole).toLongLong(), qint64(1));
        view->outcomeFilter()->setCurrentIndex(
            view->outcomeFilter()->findData(int(ui::PredictionsFilter::Outcome::Correct)));
        QCOMPARE(table->rowCount(), 2);

        // The drill-down's CSV, parsed back: quotes and commas in the fields survive.
        const QString csv = tmp_.filePath("predictions.csv");
        view->exportPredictionsCsv(csv);
        const QList<QStringList> rows = parseCsv(readAll(csv));
        QCOMPARE(rows.size(), 3);
        QCOMPARE(rows[0], (QStringList{"#", "input", "target", "prediction", "correct", "score"}));
        QCOMPARE(rows[1][1], q(expected[0].input));
        QCOMPARE(rows[1][2], q(expected[0].target));
        QCOMPARE(rows[1][4], QString("true"));
        QCOMPARE(rows[2][0], QString("2"));
        QCOMPARE(rows[2][5].toDouble(), expected[2].score);
    }

    void exportsWriteTheRows() {
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        view->datasetFilter()->setCurrentIndex(view->datasetFilter()->findData("opposite"));
        const QString csv = tmp_.filePath("results.csv");
        view->exportMetricsCsv(csv);
        const QList<QStringList> rows = parseCsv(readAll(csv));
        QCOMPARE(rows.size(), 4);  // header + the three methods on the held-out dataset
        QCOMPARE(rows[0].size(), int(ui::ResultsTableModel::ColumnCount));
        QCOMPARE(rows[0][ui::ResultsTableModel::Value], QString("value (%)"));
        for (int m = 0; m < 3; ++m) {
            const MetricRecord& stored = stored_metrics_[size_t(m * 4 + 3)];
            const QStringList& r = rows[m + 1];
            QCOMPARE(r[ui::ResultsTableModel::Run].toLongLong(), qint64(stored_run_));
            QCOMPARE(r[ui::ResultsTableModel::Method], q(stored.method));
            QCOMPARE(r[ui::ResultsTableModel::Dataset], QString("opposite"));
            QCOMPARE(r[ui::ResultsTableModel::Role], QString("held-out"));
            QCOMPARE(r[ui::ResultsTableModel::Value].toDouble(), stored.value);
            QCOMPARE(r[ui::ResultsTableModel::Examples].toLongLong(), qint64(stored.examples));
        }
        // A file that cannot be written is refused with its name, and nothing is left behind.
        const QString bad = tmp_.filePath("no-such-folder/results.csv");
        try {
            view->exportMetricsCsv(bad);
            QFAIL("writing into a missing folder should fail");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("no-such-folder/results.csv"), e.what());
        }
        QVERIFY(!QFile::exists(bad));

        // The chart as PNG and PDF.
        const QString png = tmp_.filePath("chart.png"), pdf = tmp_.filePath("chart.pdf");
        view->saveChart(png);
        view->saveChart(pdf);
        const QImage image(png);
        QVERIFY(!image.isNull());
        QVERIFY(image.width() >= 400 && image.height() >= 200);
        QVERIFY(readAll(pdf).startsWith("%PDF"));
    }

    void newEvaluationMatchesTheBackend() {
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        QVERIFY(view->newEvaluationAction()->isEnabled());
        const QString count_test = QString::fromStdString(ws_.task("count")->test.string());

        // Fill in the dialog as a user would, while its exec() runs.
        bool dialog_seen = false;
        QTimer::singleShot(0, this, [&] {
            auto* dialog = qobject_cast<ui::NewEvaluationDialog*>(QApplication::activeModalWidget());
            if (!dialog) return;
            dialog_seen = true;
            QCOMPARE(dialog->methodList()->count(), 7);   // every routing method the engine knows
            QCOMPARE(dialog->datasetList()->count(), 4);  // the workspace's test splits
            dialog->setMethodChecked("single", true);
            QVERIFY(dialog->request().methods.contains("single:" + dialog->singleExpert()->currentText()));
            for (int i = 0; i < dialog->methodList()->count(); ++i)
                dialog->methodList()->item(i)->setCheckState(Qt::Unchecked);
            QVERIFY(!dialog->okButton()->isEnabled());
            dialog->setMethodChecked("base", true);
            dialog->setMethodChecked("phatgoose", true);
            for (const char* d : kDatasets) dialog->setDatasetChecked(d, false);
            dialog->setDatasetChecked("count", true);
            dialog->setDatasetChecked("opposite", true);
            dialog->topK()->setValue(2);
            dialog->batchSize()->setValue(4);
            dialog->maxNewTokens()->setValue(6);
            QVERIFY(dialog->okButton()->isEnabled());
            dialog->okButton()->click();
        });
        QSignalSpy ended(view, &ui::ResultsView::evaluationEnded);
        view->newEvaluationAction()->trigger();
        QVERIFY(dialog_seen);
        QVERIFY(view->evaluating());
        QVERIFY(ended.wait(kWaitMs));
        QCOMPARE(ended[0][1].toString(), QString("finished"));
        const qint64 run = ended[0][0].toLongLong();
        QVERIFY(run > stored_run_);
        QCOMPARE(view->shownRun(), run);
        QVERIFY(!view->progressBar()->isVisible());

        // The table equals what the store reads back ...
        ResultsStore store(ws_.database);
        const std::vector<MetricRecord> metrics = store.metrics(run);
        QCOMPARE(int(metrics.size()), 4);
        QCOMPARE(store.run(run)->status, std::string("finished"));
        const QAbstractItemModel* table = view->metricsTable()->model();
        QCOMPARE(table->rowCount(), 4);
        using C = ui::ResultsTableModel;
        for (int r = 0; r < 4; ++r) {
            QCOMPARE(table->index(r, C::Method).data(C::kRawRole).toString(), q(metrics[size_t(r)].method));
            QCOMPARE(table->index(r, C::Dataset).data(C::kRawRole).toString(), q(metrics[size_t(r)].dataset));
            QCOMPARE(table->index(r, C::Value).data(C::kRawRole).toDouble(), metrics[size_t(r)].value);
            QCOMPARE(table->index(r, C::Examples).data(C::kRawRole).toLongLong(),
                     qint64(metrics[size_t(r)].examples));
        }
        // ... and an evaluation computed here, directly with the backend.
        PretrainedT5 t5 = loadPretrainedT5(ws_.model_dir);
        const std::vector<LoraExpert> experts =
            std::move(ExpertLibrary::open(ws_.experts_dir, t5.config).experts());
        Evaluator evaluator(*t5.model, *t5.tokenizer, experts);
        EvalSettings settings{
            .methods = parseEvalMethods("base,phatgoose", 2), .batch_size = 4, .max_new_tokens = 6};
        const std::vector<Dataset> datasets{loadJsonl(count_test.toStdString()),
                                            loadJsonl(ws_.task("opposite")->test)};
        const EvalResult direct = evaluator.run(datasets, settings);
        QCOMPARE(int(direct.cells.size()), 4);
        for (int r = 0; r < 4; ++r) {
            const EvalCell& c = direct.cells[size_t(r)];
            QCOMPARE(q(metrics[size_t(r)].method), q(c.method));
            QCOMPARE(q(metrics[size_t(r)].dataset), q(c.score.dataset));
            QCOMPARE(metrics[size_t(r)].value, c.score.value);
            QCOMPARE(metrics[size_t(r)].examples, c.score.examples);
        }
        // The chart follows the new run: two methods.
        QCOMPARE(view->chart()->barSeriesCount(), 2);
        QVERIFY(view->chart()->bars("phatgoose (k=2)"));
        // "All runs" shows both evaluations.
        view->selectRun(ui::ResultsView::kAllRuns);
        QCOMPARE(table->rowCount(), 12 + 4);
    }

    void cancelledRunStaysListed() {
        // A long grid (many one-example batches), so Cancel arrives while it runs.
        const QString big = tmp_.filePath("long.jsonl");
        {
            std::ofstream out(big.toStdString());
            for (int i = 0; i < 2000; ++i)
                out << R"({"input": "choose: which word comes first, apple or river?", "choices": ["apple", "river"], "target": "apple"})"
                    << "\n";
        }
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        QSignalSpy ended(view, &ui::ResultsView::evaluationEnded);
        ui::EvaluationRequest request;
        request.methods = {"phatgoose", "merge"};
        request.datasets = {big};
        request.batch_size = 1;
        view->startEvaluation(request);
        QTRY_VERIFY_WITH_TIMEOUT(view->progressBar()->maximum() > 0, kWaitMs);
        QVERIFY(view->cancelButton()->isEnabled());
        view->cancelButton()->click();
        QVERIFY(ended.wait(kWaitMs));
        QCOMPARE(ended[0][1].toString(), QString("cancelled"));
        const qint64 run = ended[0][0].toLongLong();
        QCOMPARE(view->shownRun(), run);
        QVERIFY(view->runSelector()->currentText().contains("cancelled"));
        QVERIFY(view->statusText().contains("cancelled"));
        ResultsStore store(ws_.database);
        QCOMPARE(store.run(run)->status, std::string("cancelled"));
        QVERIFY(store.metrics(run).size() < 2);  // it stopped before the grid's end
        // A later evaluation is not cancelled by the earlier Cancel.
        ended.clear();
        request.methods = {"base"};
        request.datasets = {QString::fromStdString(ws_.task("choose")->test.string())};
        view->startEvaluation(request);
        QVERIFY(ended.wait(kWaitMs));
        QCOMPARE(ended[0][1].toString(), QString("finished"));
    }

    void cutInputsAreReported() {
        // One input far over the 512-token limit: the run finishes and says, in the status line, what the
        // CLI would print on stderr.
        const QString longer = tmp_.filePath("longer.jsonl");
        {
            std::ofstream out(longer.toStdString());
            std::string words;
            for (int i = 0; i < 700; ++i) words += "apple river ";
            // (No raw string here: moc's lexer loses its way in one that holds a quote before a paren.)
            out << "{\"input\": \"" << words
                << "\", \"choices\": [\"apple\", \"river\"], \"target\": \"apple\"}\n";
            out << "{\"input\": \"choose: apple or river?\", \"choices\": [\"apple\", \"river\"], "
                   "\"target\": \"apple\"}\n";
        }
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        QSignalSpy ended(view, &ui::ResultsView::evaluationEnded);
        ui::EvaluationRequest request;
        request.methods = {"base"};
        request.datasets = {longer};
        view->startEvaluation(request);
        QVERIFY(ended.wait(kWaitMs));
        QCOMPARE(ended[0][1].toString(), QString("finished"));
        QVERIFY2(view->statusText().contains("1 of 2 inputs were cut to 512 tokens"),
                 qPrintable(view->statusText()));
        QVERIFY(view->statusText().contains("longer.jsonl"));
        if (const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR"); !dir.isEmpty())
            window.grab().save(QDir(dir).filePath("results_cut_inputs.png"));
    }

    void evaluationFailureIsReported() {
        const QString bad = tmp_.filePath("bad.jsonl");
        {
            std::ofstream out(bad.toStdString());
            out << R"({"input": "fine", "target": "yes"})"
                << "\n"
                << "{not json\n";
        }
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, ws_.root);
        QVERIFY(view);
        const int runs_before = view->runSelector()->count();
        QSignalSpy ended(view, &ui::ResultsView::evaluationEnded);
        ui::EvaluationRequest request;
        request.methods = {"base"};
        request.datasets = {bad};
        view->startEvaluation(request);
        QVERIFY(ended.wait(kWaitMs));
        QCOMPARE(ended[0][0].toLongLong(), qint64(-1));  // refused before a run began: nothing stored
        QCOMPARE(ended[0][1].toString(), QString("failed"));
        QVERIFY(!view->evaluating());
        QVERIFY(view->newEvaluationAction()->isEnabled());
        QCOMPARE(view->runSelector()->count(), runs_before);
        // The reason, file and line, reaches the user in the main window's message box.
        QTRY_VERIFY_WITH_TIMEOUT(!window.findChildren<QMessageBox*>().isEmpty(), 5000);
        const QString message = window.findChildren<QMessageBox*>().front()->text();
        QVERIFY2(message.contains("bad.jsonl:2"), qPrintable(message));
    }

    void corruptDatabaseIsReported() {
        const Workspace broken = testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "broken");
        {
            std::ofstream out(broken.database);
            for (int i = 0; i < 200; ++i) out << "this is not an SQLite database, just text\n";
        }
        ui::MainWindow window;
        window.show();
        ui::ResultsView* view = open(window, broken.root);
        QVERIFY(view);
        QVERIFY2(view->errorText().contains("not a SQLite database"), qPrintable(view->errorText()));
        QVERIFY(view->errorText().contains(QString::fromStdString(broken.database.string())));
        QCOMPARE(view->metricsTable()->model()->rowCount(), 0);
        QCOMPARE(view->chart()->barSeriesCount(), 0);
        QVERIFY(!view->newEvaluationAction()->isEnabled());
        view->refresh();  // still no crash, still the same message
        QVERIFY(view->errorText().contains("not a SQLite database"));

        // The window stays usable: the good workspace opens in it and its results show.
        QVERIFY(open(window, ws_.root));
        QCOMPARE(view->errorText(), QString());
        QVERIFY(view->metricsTable()->model()->rowCount() > 0);
        QVERIFY(view->newEvaluationAction()->isEnabled());
    }

    // Not a check: PHATGOOSE_RESULTS_SCREENSHOT=FILE renders the Results tab there. With
    // PHATGOOSE_RESULTS_WORKSPACE=DIR it shows that workspace's latest run; without, this test's tiny
    // workspace after an evaluation of every routing method on every test split.
    void screenshot() {
        // Without PHATGOOSE_RESULTS_SCREENSHOT the view still renders, into a file that is thrown away.
        QTemporaryDir scratch;
        const QString file =
            qEnvironmentVariable("PHATGOOSE_RESULTS_SCREENSHOT", scratch.filePath("results.png"));
        const QString folder = qEnvironmentVariable("PHATGOOSE_RESULTS_WORKSPACE");
        ui::MainWindow window;
        window.show();
        window.resize(1280, 860);  // after show(): the shell restores the last session's geometry there
        ui::ResultsView* view = open(window, folder.isEmpty() ? ws_.root : fs::path(folder.toStdString()));
        QVERIFY(view);
        window.tabs()->setCurrentWidget(view);
        if (folder.isEmpty()) {
            ui::EvaluationRequest request;
            request.methods = {"base",  "single:choose", "merge", "retrieval", "average-activation",
                               "arrow", "phatgoose"};
            for (const char* d : kDatasets)
                request.datasets << QString::fromStdString(ws_.task(d)->test.string());
            request.max_new_tokens = 4;
            QSignalSpy ended(view, &ui::ResultsView::evaluationEnded);
            view->startEvaluation(request);
            QVERIFY(ended.wait(kWaitMs));
            QCOMPARE(ended[0][1].toString(), QString("finished"));
        }
        const QAbstractItemModel* table = view->metricsTable()->model();
        int row = 0;
        for (int r = 0; r < table->rowCount(); ++r)
            if (table->index(r, ui::ResultsTableModel::Method).data().toString() == "phatgoose" &&
                table->index(r, ui::ResultsTableModel::Role).data().toString() == "held-out") {
                row = r;
                break;
            }
        // Column 0 (run) is hidden while one run is shown, and a view does not scroll to a hidden cell.
        const QModelIndex shown = table->index(row, ui::ResultsTableModel::Method);
        view->metricsTable()->setCurrentIndex(shown);
        QTest::qWait(200);  // the table's viewport gets its size first
        view->metricsTable()->scrollTo(shown, QAbstractItemView::PositionAtCenter);
        QTest::qWait(200);
        QVERIFY(window.grab().save(file));
    }
};

QTEST_MAIN(ResultsGuiTest)
#include "test_gui_results.moc"
