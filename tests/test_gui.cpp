// The workbench's real widgets, offscreen: open a model and an expert library, probe a prompt, and check
// that the heatmap draws exactly the routing the backend computes.
#include <QApplication>
#include <QComboBox>
#include <QInputDialog>
#include <QSignalSpy>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QtTest>

#include "experts/lora_expert.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "model/hub_cache.h"
#include "model/t5_loader.h"
#include "routing/probe.h"
#include "ui/main_window.h"
#include "ui/probe/probe_view.h"
#include "ui/probe/routing_heatmap.h"

using namespace phatgoose;
namespace fs = std::filesystem;

class GuiTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    QString model_, library_;

private Q_SLOTS:
    void initTestCase() {
        const fs::path root(tmp_.path().toStdString());
        model_ =
            QString::fromStdString(phatgoose::testing::writeTinyT5(root / "model", {.gated = true}).string());
        const T5Config config = phatgoose::testing::tinyConfig({.gated = true});
        for (int i = 0; i < 3; ++i) {
            const std::string name = "expert" + std::to_string(i);
            saveLoraExpert(phatgoose::testing::randomExpert(name, config, uint64_t(70 + i)),
                           root / "library" / name);
        }
        library_ = QString::fromStdString((root / "library").string());
    }

    void aModelOpensFromTheHuggingFaceCache() {
        // A cache laid out as huggingface_hub writes it; the dialog offers its models by id.
        const fs::path cache = fs::path(tmp_.path().toStdString()) / "hf-cache";
        const fs::path snapshot = cache / "models--google--tiny-t5" / "snapshots" / "abc123";
        fs::create_directories(snapshot.parent_path());
        fs::copy(model_.toStdString(), snapshot, fs::copy_options::recursive);
        fs::create_directories(cache / "models--google--no-snapshot" / "snapshots");
        qputenv("HF_HUB_CACHE", QByteArray::fromStdString(cache.string()));
        QCOMPARE(cachedHubModels(), std::vector<std::string>{"google/tiny-t5"});

        ui::MainWindow window;
        window.show();
        bool offered = false;
        QTimer::singleShot(0, this, [&] {
            auto* dialog = qobject_cast<QInputDialog*>(QApplication::activeModalWidget());
            if (!dialog) return;
            offered = dialog->comboBoxItems() == QStringList{"google/tiny-t5"};
            if (const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR"); !dir.isEmpty())
                dialog->grab().save(QDir(dir).filePath("hub_model_dialog.png"));
            dialog->setTextValue("google/tiny-t5");
            dialog->accept();
        });
        window.showHubModelDialog();
        QVERIFY(offered);
        QTRY_VERIFY_WITH_TIMEOUT(
            window.statusBar()->currentMessage().contains(QString::fromStdString(snapshot.string())), 60000);
        qunsetenv("HF_HUB_CACHE");
    }

    void probeDrawsTheBackendsRouting() {
        ui::MainWindow window;
        window.show();
        window.openModel(model_);
        window.openLibrary(library_);
        ui::ProbeView* probe = window.probeView();
        probe->setPrompt("count the letters in apple");
        probe->setMethod("phatgoose");
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        QVERIFY(shown.wait(60000));

        // The same prompt through the backend directly.
        PretrainedT5 t5 = loadPretrainedT5(model_.toStdString());
        std::vector<LoraExpert> experts;
        for (const char* n : {"expert0", "expert1", "expert2"})
            experts.push_back(loadLoraExpert(fs::path(library_.toStdString()) / n, t5.config));
        ProbeOutcome direct =
            probePrompt(t5, experts, {.method = "phatgoose", .top_k = 2}, "count the letters in apple", 16);

        QCOMPARE(probe->siteSelector()->count(), int(direct.trace.sites.size()));
        for (int pick : {0, 5, probe->siteSelector()->count() - 1}) {
            probe->siteSelector()->setCurrentIndex(pick);
            const SiteRouting& site = direct.trace.sites[size_t(pick)];
            const auto& cells = probe->heatmap()->cells();
            QCOMPARE(int(cells.size()), 3);
            QCOMPARE(probe->heatmap()->rowExperts(),
                     (std::vector<int>{0, 1, 2}));  // all three, library order
            QCOMPARE(int64_t(cells[0].size()), site.tokens);
            for (int64_t t = 0; t < site.tokens; ++t) {
                double sum = 0;
                for (int e = 0; e < 3; ++e) sum += cells[size_t(e)][size_t(t)];
                QVERIFY(std::abs(sum - 1.0) < 1e-5);
                for (int64_t j = 0; j < site.k; ++j) {
                    const auto e = size_t(site.experts[size_t(t * site.k + j)]);
                    QVERIFY(std::abs(cells[e][size_t(t)] - site.weights[size_t(t * site.k + j)]) < 1e-5);
                }
            }
            const auto& pieces =
                site.decoder_tokens ? direct.trace.decoder_pieces : direct.trace.encoder_pieces;
            QCOMPARE(probe->heatmap()->tokenLabels().size(), int(pieces.size()));
            QCOMPARE(probe->heatmap()->tokenLabels().front(), QString::fromStdString(pieces.front()));
        }
    }
};

QTEST_MAIN(GuiTest)
#include "test_gui.moc"
