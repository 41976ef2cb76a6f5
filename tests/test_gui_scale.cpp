// The views at the paper's library size: a generated 166-expert library (names in three prefix groups, as
// the authors' P3 / Flan / NIv2 experts; stored BF16) on the tiny workspace's model. Every drawn row, bar
// and legend entry is checked against the backend's own trace of the same prompt; screenshots are saved
// under PHATGOOSE_SCREENSHOT_DIR. The first launch lands on the probe with the workspace's example prompt.
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <map>

#include "experts/lora_expert.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_workspace.h"
#include "model/t5_config.h"
#include "ui/engine_worker.h"
#include "ui/experts/experts_view.h"
#include "ui/main_window.h"
#include "ui/plot/expert_legend.h"
#include "ui/probe/gate_scores_view.h"
#include "ui/probe/probe_view.h"
#include "ui/probe/routing_heatmap.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

const char* kPrompt = "reverse the word apple";

// 56 + 60 + 50 = 166 names, sorted as a library lists them.
std::vector<std::string> paperLikeNames() {
    std::vector<std::string> names;
    auto add = [&](const std::string& prefix, int count) {
        for (int i = 0; i < count; ++i) {
            std::string n = prefix;
            n.append("Task").append(std::to_string(100 + i));
            names.push_back(n);
        }
    };
    add("Flanv2zs", 60);
    add("Niv2zs", 50);
    add("P3", 56);
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

class GuiScaleTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    QString workspace_, experts_dir_;
    std::vector<std::string> names_;
    std::unique_ptr<ui::MainWindow> window_;

private Q_SLOTS:
    void initTestCase() {
        // A settings file of its own: no tab or layout saved by another run.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("phatgoose-tests");
        QCoreApplication::setApplicationName("test_gui_scale");
        QSettings().clear();
        const Workspace ws =
            phatgoose::testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "ws");
        workspace_ = QString::fromStdString(ws.root.string());
        experts_dir_ = QString::fromStdString(ws.experts_dir.string());
        fs::remove_all(ws.experts_dir);
        const T5Config config = T5Config::fromFile(ws.model_dir / "config.json");
        names_ = paperLikeNames();
        for (size_t i = 0; i < names_.size(); ++i)
            saveLoraExpert(phatgoose::testing::randomExpert(names_[i], config, 500 + i),
                           ws.experts_dir / names_[i], DType::BF16);
        window_ = std::make_unique<ui::MainWindow>();
        window_->resize(1500, 950);
        window_->show();
        QSignalSpy shown(window_->expertsView(), &ui::ExpertsView::expertsShown);
        QSignalSpy progress(window_->worker(), &ui::EngineWorker::openingProgress);
        window_->openWorkspace(workspace_);
        QVERIFY(shown.wait(120000));
        // The status bar's progress: one report per expert, the last one complete; hidden when done.
        QCOMPARE(progress.count(), 166);
        QCOMPARE(progress.last().at(0).toInt(), 166);
        QCOMPARE(progress.last().at(1).toInt(), 166);
        QVERIFY(!window_->findChild<QProgressBar*>("openingProgress")->isVisible());
    }

    // The first screen is the probe, with the workspace's held-out example prompt filled in.
    void firstLaunchLandsOnTheProbe() {
        QCOMPARE(window_->tabs()->currentWidget(), static_cast<QWidget*>(window_->probeView()));
        QCOMPARE(window_->probeView()->prompt(),
                 QString("opposite: which word comes first, apple or river?"));
    }

    void heatmapShowsTheExpertsThatMatter() {
        ui::ProbeView* probe = window_->probeView();
        probe->setPrompt(kPrompt);
        probe->setMethod("phatgoose");
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        QVERIFY(shown.wait(120000));
        QCOMPARE(int(probe->trace().expert_names.size()), 166);
        const std::string path = "encoder.block.1.layer.1.DenseReluDense.wo";
        probe->selectSite(QString::fromStdString(path));
        const SiteRouting* site = probe->trace().find(path);
        QVERIFY(site);
        ui::RoutingHeatmap* map = probe->heatmap();
        // Recomputed here: each expert's largest weight anywhere in the prompt; the 24 largest (ties to the
        // lower library index), drawn in library order.
        std::vector<double> largest(166, 0.0);
        for (size_t i = 0; i < site->experts.size(); ++i)
            largest[size_t(site->experts[i])] =
                std::max(largest[size_t(site->experts[i])], double(site->weights[i]));
        std::vector<int> order(166);
        for (int e = 0; e < 166; ++e) order[size_t(e)] = e;
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return largest[size_t(a)] > largest[size_t(b)]; });
        std::vector<int> expected(order.begin(), order.begin() + ui::RoutingHeatmap::kDefaultExpertLimit);
        std::sort(expected.begin(), expected.end());
        QCOMPARE(map->rowExperts(), expected);
        QCOMPARE(int(map->cells().size()), ui::RoutingHeatmap::kDefaultExpertLimit);
        for (size_t r = 0; r < expected.size(); ++r)
            for (int64_t t = 0; t < site->tokens; ++t) {
                double w = 0;
                for (int64_t j = 0; j < site->k; ++j)
                    if (site->experts[size_t(t * site->k + j)] == expected[r])
                        w = site->weights[size_t(t * site->k + j)];
                QVERIFY(std::abs(map->cells()[r][size_t(t)] - w) < 1e-6);
            }

        // The search box narrows the rows to matching names.
        probe->expertFilter()->setText("niv2");
        for (int e : map->rowExperts())
            QVERIFY(QString::fromStdString(names_[size_t(e)]).startsWith("Niv2zs"));
        QCOMPARE(int(map->rowExperts().size()), ui::RoutingHeatmap::kDefaultExpertLimit);  // 50 match
        for (int e : probe->gateScores()->barOrder())
            QVERIFY(QString::fromStdString(names_[size_t(e)]).startsWith("Niv2zs"));
        probe->expertFilter()->clear();

        // "all": every expert, and the plot grows taller than its view, which scrolls.
        probe->expertLimit()->setValue(0);
        QCOMPARE(int(map->rowExperts().size()), 166);
        auto* scroll = map->findChild<QScrollArea*>();
        QVERIFY(scroll);
        QCoreApplication::processEvents();
        QVERIFY(scroll->verticalScrollBar()->maximum() > 0);
        probe->expertLimit()->setValue(ui::RoutingHeatmap::kDefaultExpertLimit);
    }

    void gateScoresAreSortedAndScroll() {
        ui::ProbeView* probe = window_->probeView();
        const std::string path = "encoder.block.0.layer.0.SelfAttention.q";
        probe->selectSite(QString::fromStdString(path));
        probe->selectToken(false, 2);
        ui::GateScoresView* scores = probe->gateScores();
        const std::vector<int>& order = scores->barOrder();
        QCOMPARE(int(order.size()), 166);
        const std::vector<double>& bars = scores->bars();
        for (size_t i = 1; i < order.size(); ++i)
            QVERIFY(bars[size_t(order[i - 1])] >= bars[size_t(order[i])]);
        // The kept top-k lead.
        const SiteRouting* site = probe->trace().find(path);
        for (int64_t j = 0; j < site->k; ++j) QVERIFY(scores->highlighted().count(order[size_t(j)]));
        QVERIFY(scores->scoresScroll()->isVisible());
        QCOMPARE(scores->scoresScroll()->maximum(), 166 - ui::GateScoresView::kVisibleBars);
        // Below: the legend counts every module's top-1 expert of the token.
        std::map<int, int> wins;
        for (int top : scores->moduleTopExperts())
            if (top >= 0) ++wins[top];
        int listed = 0;
        for (const auto& entry : scores->modulesLegend()->entries()) {
            QCOMPARE(entry.count, wins[entry.expert]);
            listed += entry.count;
        }
        QCOMPARE(listed, int(std::count_if(scores->moduleTopExperts().begin(),
                                           scores->moduleTopExperts().end(), [](int t) { return t >= 0; })));
        QCOMPARE(int(scores->modulesLegend()->entries().size()), int(wins.size()));
    }

    void topExpertModeHasALegend() {
        ui::ProbeView* probe = window_->probeView();
        probe->viewSelector()->setCurrentIndex(1);
        probe->scopeSelector()->setCurrentIndex(1);
        ui::RoutingHeatmap* map = probe->heatmap();
        QVERIFY(map->legend()->isVisible());
        std::map<int, int> cells;
        for (const auto& row : map->cells())
            for (double v : row)
                if (v >= 0) ++cells[int(v)];
        QCOMPARE(int(map->legend()->entries().size()), int(cells.size()));
        for (const auto& entry : map->legend()->entries()) QCOMPARE(entry.count, cells[entry.expert]);
        probe->viewSelector()->setCurrentIndex(0);
    }

    void expertsTableFilters() {
        ui::ExpertsView* view = window_->expertsView();
        QCOMPARE(view->shownCount(), 166);
        QVERIFY(view->countText().contains("166 experts"));
        view->setFilter("flanv2zs");
        QCOMPARE(view->shownCount(), 60);
        QVERIFY2(view->countText().contains("60 of 166"), qPrintable(view->countText()));
        view->setFilter(QString());
        QCOMPARE(view->shownCount(), 166);
    }

    // Cancel while a library opens: the open one stays, the status bar says so, no error dialog.
    void cancellingAnOpeningKeepsTheLibrary() {
        ui::EngineWorker* worker = window_->worker();
        QSignalSpy cancelled(worker, &ui::EngineWorker::openingCancelled);
        QSignalSpy failed(worker, &ui::EngineWorker::failed);
        // The first progress report cancels (as the Cancel button does: directly, from this thread).
        auto once = std::make_shared<QMetaObject::Connection>();
        *once = connect(
            worker, &ui::EngineWorker::openingProgress, this,
            [worker, once] {
                worker->requestCancel();
                QObject::disconnect(*once);
            },
            Qt::DirectConnection);
        window_->openLibrary(experts_dir_);
        QVERIFY(cancelled.wait(120000));
        QCOMPARE(failed.count(), 0);
        QCOMPARE(window_->expertsView()->shownCount(), 166);
    }

    void screenshots() {
        QTemporaryDir scratch;
        const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR", scratch.path());
        ui::ProbeView* probe = window_->probeView();
        window_->tabs()->setCurrentWidget(probe);
        probe->selectSite("encoder.block.1.layer.1.DenseReluDense.wo");
        probe->selectToken(false, 2);
        QTest::qWait(200);
        QVERIFY(window_->grab().save(dir + "/probe_166.png"));
        probe->viewSelector()->setCurrentIndex(1);
        probe->scopeSelector()->setCurrentIndex(1);
        QTest::qWait(200);
        QVERIFY(window_->grab().save(dir + "/probe_166_top1.png"));
        probe->viewSelector()->setCurrentIndex(0);
        window_->tabs()->setCurrentWidget(window_->expertsView());
        window_->expertsView()->setFilter("p3");
        QTest::qWait(200);
        QVERIFY(window_->grab().save(dir + "/experts_166.png"));
        window_->expertsView()->setFilter(QString());
    }

    void cleanupTestCase() { window_.reset(); }
};

QTEST_MAIN(GuiScaleTest)
#include "test_gui_scale.moc"
