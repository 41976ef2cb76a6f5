// The Routing analysis tab with real widgets, offscreen, on a tiny workspace: "New analysis" runs on the
// engine thread and stores a route-stats run; the stored statistics equal the backend's analysis run
// directly; the heatmap's cells, the module selection, a clicked cell's layer profile, the similarity view
// and the CSV export all equal what routing/routing_summary computes from the stored statistics.
#include <QApplication>
#include <QComboBox>
#include <QFile>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>

#include "experts/expert_library.h"
#include "fixtures/tiny_workspace.h"
#include "model/t5_loader.h"
#include "routing/routing_analysis.h"
#include "routing/routing_summary.h"
#include "store/results_store.h"
#include "ui/analysis/labeled_heatmap.h"
#include "ui/analysis/routing_analysis_view.h"
#include "ui/main_window.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/probe/routing_method_picker.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

constexpr int kWaitMs = 120000;

bool near(double a, double b) {
    return std::abs(a - b) < 1e-9;
}

}  // namespace

class AnalysisGuiTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    Workspace ws_;

    // Opens the workspace and waits until its library is loaded (the method picker lists the experts).
    static ui::RoutingAnalysisView* open(ui::MainWindow& window, const Workspace& ws) {
        window.openWorkspace(QString::fromStdString(ws.root.string()));
        ui::RoutingAnalysisView* view = window.analysisView();
        if (!QTest::qWaitFor([&] { return view->methodPicker()->expertBox()->count() > 0; }, kWaitMs))
            return nullptr;
        return view;
    }

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setApplicationName("test_gui_analysis");
        QSettings().clear();
        QVERIFY(tmp_.isValid());
        ws_ = testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "ws");
    }

    void newAnalysisIsStoredAndDrawn() {
        ui::MainWindow window;
        window.resize(1500, 900);
        ui::RoutingAnalysisView* view = open(window, ws_);
        QVERIFY(view);
        QCOMPARE(view->runBox()->count(), 0);
        view->methodPicker()->setMethod("phatgoose");
        view->methodPicker()->setTopK(2);
        view->newAnalysisButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(view->runBox()->count(), 1, kWaitMs);
        QTRY_VERIFY(view->newAnalysisButton()->isEnabled());
        QVERIFY(!view->progressBar()->isVisible());

        // The stored run equals the backend's own analysis of the same test sets.
        const ResultsStore store(ws_.database);
        const qint64 run = view->runBox()->currentData().toLongLong();
        QCOMPARE(store.run(run)->status, std::string("finished"));
        PretrainedT5 t5 = loadPretrainedT5(ws_.model_dir);
        const ExpertLibrary library = ExpertLibrary::open(ws_.experts_dir, t5.config);
        RoutingSpec spec{.method = "phatgoose", .top_k = 2};
        spec.record_trace = true;
        auto router = makeRouter(*t5.model, library.experts(), spec);
        std::vector<RoutingDataset> datasets;
        for (const WorkspaceTask& task : ws_.tasks)
            datasets.push_back(tokenizeForRouting(loadJsonl(task.test.empty() ? task.valid : task.test),
                                                  *t5.tokenizer, EvalSettings{}.max_input_tokens));
        const RoutingStatistics expected = analyseRouting(*t5.model, *router, datasets).statistics;
        const RoutingStatistics& shown = view->statistics();
        QCOMPARE(shown.expert_names, expected.expert_names);
        QCOMPARE(shown.datasets.size(), expected.datasets.size());
        for (size_t d = 0; d < expected.datasets.size(); ++d) {
            QCOMPARE(shown.datasets[d].name, expected.datasets[d].name);
            QCOMPARE(shown.datasets[d].sites.size(), expected.datasets[d].sites.size());
            for (size_t s = 0; s < expected.datasets[d].sites.size(); ++s) {
                QCOMPARE(shown.datasets[d].sites[s].kept, expected.datasets[d].sites[s].kept);
                QCOMPARE(shown.datasets[d].sites[s].tokens, expected.datasets[d].sites[s].tokens);
            }
        }

        // Cells = the summary of the stored statistics, in the drawn order; the held-out task is marked.
        auto checkCells = [&](const ModuleSelection& selection) {
            const auto matrix = datasetExpertWeights(shown, selection);
            const auto& cells = view->weightsMap()->values();
            QCOMPARE(cells.size(), matrix.size());
            for (size_t r = 0; r < cells.size(); ++r)
                for (size_t c = 0; c < cells[r].size(); ++c)
                    QVERIFY(near(cells[r][c], matrix[view->rowDatasets()[r]][view->columnExperts()[c]]));
        };
        checkCells({});
        QVERIFY(view->weightsMap()->rowLabels().join("|").contains("opposite [held-out]"));
        view->stackBox()->setCurrentIndex(1);
        checkCells({.stack = ModuleSelection::Stack::Encoder, .block = -1, .kind = ""});
        view->kindBox()->setCurrentIndex(1);
        const std::string kind = view->kindBox()->currentData().toString().toStdString();
        checkCells({.stack = ModuleSelection::Stack::Encoder, .block = -1, .kind = kind});
        view->layerBox()->setValue(1);
        checkCells({.stack = ModuleSelection::Stack::Encoder, .block = 1, .kind = kind});
        view->layerBox()->setValue(-1);
        view->kindBox()->setCurrentIndex(0);
        view->stackBox()->setCurrentIndex(0);

        // A click on a cell plots that dataset's weight on that expert, layer by layer, in both stacks.
        window.findChild<QTabWidget*>()->setCurrentWidget(view);
        QCustomPlot* plot = view->weightsMap()->plot();
        plot->replot();
        const int rows = int(view->weightsMap()->values().size());
        const QPoint cell(int(plot->xAxis->coordToPixel(1)), int(plot->yAxis->coordToPixel(rows - 1 - 2)));
        QTest::mouseClick(plot, Qt::LeftButton, {}, cell);
        const size_t dataset = view->rowDatasets()[2], expert = view->columnExperts()[1];
        for (int g = 0; g < 2; ++g) {
            const std::vector<double> profile = layerProfile(shown.datasets[dataset], expert, g == 1);
            const auto* data = view->profilePlot()->graph(g)->data().data();
            QCOMPARE(data->size(), int(profile.size()));
            for (int b = 0; b < data->size(); ++b) {
                QCOMPARE(data->at(b)->key, double(b));
                QVERIFY(near(data->at(b)->value, profile[size_t(b)]));
            }
        }

        // The similarity view: cosine of the weight rows, in the same order.
        view->viewBox()->setCurrentIndex(1);
        const auto cosine = cosineSimilarity(datasetExpertWeights(shown, {}));
        const auto& sim = view->similarityMap()->values();
        for (size_t r = 0; r < sim.size(); ++r)
            for (size_t c = 0; c < sim.size(); ++c)
                QVERIFY(near(sim[r][c], cosine[view->rowDatasets()[r]][view->rowDatasets()[c]]));

        // CSV: the drawn matrix, labels included.
        view->viewBox()->setCurrentIndex(0);
        const QString csv = QString::fromStdString((fs::path(tmp_.path().toStdString()) / "w.csv").string());
        view->exportCsv(csv);
        QFile file(csv);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QStringList lines = QString::fromUtf8(file.readAll()).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), rows + 1);
        const QStringList first = lines[1].split(',');
        QCOMPARE(first[0], view->weightsMap()->rowLabels()[0]);
        QVERIFY(near(first[1].toDouble(), view->weightsMap()->values()[0][0]));
    }

    // The tab on a real analysis, saved as PNGs: PHATGOOSE_SCREENSHOT_WORKSPACE (copied first, so that its
    // own database is not written) or the tiny workspace; PHATGOOSE_SCREENSHOT_DIR or a folder thrown away.
    void screenshots() {
        QTemporaryDir scratch;
        const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR", scratch.path());
        fs::path root = ws_.root;
        if (qEnvironmentVariableIsSet("PHATGOOSE_SCREENSHOT_WORKSPACE")) {
            root = fs::path(scratch.path().toStdString()) / "workspace";
            fs::copy(qEnvironmentVariable("PHATGOOSE_SCREENSHOT_WORKSPACE").toStdString(), root,
                     fs::copy_options::recursive);
        }
        ui::MainWindow window;
        window.resize(1500, 950);
        window.show();
        window.openWorkspace(QString::fromStdString(root.string()));
        ui::RoutingAnalysisView* view = window.analysisView();
        QVERIFY(QTest::qWaitFor([&] { return view->methodPicker()->expertBox()->count() > 0; }, kWaitMs));
        window.findChild<QTabWidget*>()->setCurrentWidget(view);
        view->methodPicker()->setMethod("phatgoose");
        view->methodPicker()->setTopK(2);
        const int before = view->runBox()->count();
        view->newAnalysisButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(view->runBox()->count(), before + 1, kWaitMs);
        // The profile of the first held-out row on its heaviest expert.
        const auto& cells = view->weightsMap()->values();
        int row = 0;
        for (int r = 0; r < view->weightsMap()->rowLabels().size(); ++r)
            if (view->weightsMap()->rowLabels()[r].contains("held-out")) {
                row = r;
                break;
            }
        const auto best = std::max_element(cells[size_t(row)].begin(), cells[size_t(row)].end());
        view->showProfile(view->rowDatasets()[size_t(row)],
                          view->columnExperts()[size_t(best - cells[size_t(row)].begin())]);
        QTest::qWait(200);
        QVERIFY(window.grab().save(dir + "/analysis.png"));
        view->viewBox()->setCurrentIndex(1);
        QTest::qWait(200);
        QVERIFY(window.grab().save(dir + "/analysis_similarity.png"));
    }

    // Cancel: the run is kept as cancelled with the datasets finished before it, never half a dataset.
    void cancelKeepsWholeDatasets() {
        ui::MainWindow window;
        window.resize(1500, 900);
        ui::RoutingAnalysisView* view = open(window, ws_);
        QVERIFY(view);
        const int before = view->runBox()->count();
        view->newAnalysisButton()->click();  // click(): the window is never shown, so no layout to aim at
        QVERIFY(view->cancelButton()->isEnabled());
        view->cancelButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(view->runBox()->count(), before + 1, kWaitMs);
        const ResultsStore store(ws_.database);
        const qint64 run = view->runBox()->currentData().toLongLong();
        const std::string status = store.run(run)->status;
        QVERIFY2(status == "cancelled" || status == "finished", status.c_str());
        const auto stored = store.routingStatistics(run);
        if (status == "cancelled") QVERIFY(stored.size() < ws_.tasks.size());
        for (const DatasetRoutingStatistics& d : stored) QVERIFY(!d.sites.empty() && d.sites[0].tokens > 0);
    }
};

QTEST_MAIN(AnalysisGuiTest)
#include "test_gui_analysis.moc"
