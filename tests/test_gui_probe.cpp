// The probing views with real widgets, offscreen, on the tiny workspace: both heatmap modes, the gate scores
// of a token, selecting a token by clicking, the Compare view, and the exports. Every drawn number is checked
// against the backend's own trace for the same prompt (probePrompt called here directly).
#include <QComboBox>
#include <QImage>
#include <QLabel>
#include <QMenu>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QWidgetAction>
#include <QtTest>
#include <cmath>
#include <set>

#include "experts/expert_library.h"
#include "fixtures/tiny_workspace.h"
#include "model/t5_loader.h"
#include "routing/probe.h"
#include "ui/main_window.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/probe/compare_view.h"
#include "ui/probe/difference_heatmap.h"
#include "ui/probe/gate_scores_view.h"
#include "ui/probe/probe_view.h"
#include "ui/probe/routing_heatmap.h"
#include "ui/probe/routing_method_picker.h"
#include "ui/probe/token_strip.h"
#include "ui/probe/trace_queries.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

const char* kPrompt = "reverse the word apple";

// The expert with the highest score (library index) at a module and token, from the recorded scores.
int argmaxScore(const SiteRouting& s, int64_t t) {
    const size_t n = s.candidates.size();
    size_t best = 0;
    for (size_t c = 1; c < n; ++c)
        if (s.scores[size_t(t) * n + c] > s.scores[size_t(t) * n + best]) best = c;
    return s.candidates[best];
}

std::set<int> keptSet(const SiteRouting& s, int64_t t) {
    std::set<int> out;
    for (int64_t j = 0; j < s.k; ++j) out.insert(s.experts[size_t(t * s.k + j)]);
    return out;
}

// Tokens whose kept sets differ / compared tokens, per module present in both, written out independently of
// ui::compareRouting: encoder rows all compared, decoder rows only within the agreeing generated prefix.
std::vector<double> differingFractions(const RoutingTrace& a, const RoutingTrace& b) {
    size_t prefix = 0;
    while (prefix < a.decoder_pieces.size() && prefix < b.decoder_pieces.size() &&
           a.decoder_pieces[prefix] == b.decoder_pieces[prefix])
        ++prefix;
    std::vector<double> out;
    for (const SiteRouting& sa : a.sites) {
        const SiteRouting* sb = b.find(sa.site);
        if (!sb) continue;
        int64_t tokens = sa.decoder_tokens ? int64_t(prefix) : int64_t(a.encoder_pieces.size());
        tokens = std::min({tokens, sa.tokens, sb->tokens});
        int differing = 0;
        for (int64_t t = 0; t < tokens; ++t) differing += keptSet(sa, t) != keptSet(*sb, t);
        out.push_back(tokens ? double(differing) / double(tokens) : 0.0);
    }
    return out;
}

}  // namespace

class GuiProbeTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    QString workspace_;
    PretrainedT5 t5_;
    std::vector<LoraExpert> experts_;

    // A window with the workspace open and `method` probed on kPrompt.
    std::unique_ptr<ui::MainWindow> probedWindow(const QString& method) {
        auto window = std::make_unique<ui::MainWindow>();
        window->resize(1400, 900);
        window->show();
        window->openWorkspace(workspace_);
        ui::ProbeView* probe = window->probeView();
        window->tabs()->setCurrentWidget(probe);
        probe->setPrompt(kPrompt);
        probe->setMethod(method);
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        if (!shown.wait(60000)) return nullptr;
        QCoreApplication::processEvents();
        return window;
    }

    ProbeOutcome direct(const std::string& method, int64_t k, const std::string& expert = {}) {
        return probePrompt(t5_, experts_, {.method = method, .top_k = k, .expert = expert}, kPrompt, 16);
    }

private Q_SLOTS:
    void initTestCase() {
        const Workspace ws =
            phatgoose::testing::writeTinyWorkspace(fs::path(tmp_.path().toStdString()) / "ws");
        workspace_ = QString::fromStdString(ws.root.string());
        t5_ = loadPretrainedT5(ws.model_dir);
        experts_ = std::move(ExpertLibrary::open(ws.experts_dir, t5_.config).experts());
        QCOMPARE(int(experts_.size()), 3);
    }

    void methodPickerOffersEveryMethod() {
        ui::RoutingMethodPicker picker;
        QStringList offered;
        for (int i = 0; i < picker.methodBox()->count(); ++i) offered << picker.methodBox()->itemText(i);
        QStringList known;
        for (const RoutingMethod& m : routingMethods()) known << QString::fromStdString(m.name);
        QCOMPARE(offered, known);
        picker.setExpertNames({"choose", "count", "reverse"});
        picker.setMethod("single");
        QVERIFY(picker.expertBox()->isEnabled());
        QVERIFY(!picker.topKBox()->isEnabled());
        picker.setExpert("count");
        QCOMPARE(picker.expert(), QString("count"));
        picker.setMethod("phatgoose");
        QVERIFY(!picker.expertBox()->isEnabled());
        QVERIFY(picker.topKBox()->isEnabled());
        QCOMPARE(picker.expert(), QString());
        // k survives a model opened without experts, and a smaller library only clamps it.
        picker.setTopK(3);
        picker.setExpertNames({});
        QCOMPARE(picker.topK(), 3);
        picker.setExpertNames({"one", "two"});
        QCOMPARE(picker.topK(), 2);
        picker.setExpertNames({"a", "b", "c", "d"});
        QCOMPARE(picker.topK(), 3);
    }

    void topExpertModeMatchesTheBackend() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        const ProbeOutcome d = direct("phatgoose", 2);
        QCOMPARE(int(probe->trace().sites.size()), int(d.trace.sites.size()));
        QCOMPARE(probe->inputTokens()->pieces().size(), int(d.trace.encoder_pieces.size()));
        QCOMPARE(probe->outputTokens()->pieces().size(), int(d.trace.decoder_pieces.size()));
        probe->viewSelector()->setCurrentIndex(1);  // top-1 expert x modules
        ui::RoutingHeatmap* map = probe->heatmap();
        QCOMPARE(map->mode(), ui::RoutingHeatmap::Mode::TopExpert);
        for (const char* site :
             {"encoder.block.1.layer.1.DenseReluDense.wo", "decoder.block.2.layer.0.SelfAttention.v",
              "decoder.block.0.layer.1.EncDecAttention.k"}) {
            for (int scope : {0, 1}) {
                probe->scopeSelector()->setCurrentIndex(scope);
                probe->selectSite(site);
                const SiteRouting* chosen = d.trace.find(site);
                QVERIFY(chosen);
                const auto& rows = map->rowSites();
                QVERIFY(!rows.empty());
                QCOMPARE(int(map->cells().size()), int(rows.size()));
                for (size_t r = 0; r < rows.size(); ++r) {
                    const SiteRouting& s = d.trace.sites[size_t(rows[r])];
                    QCOMPARE(s.decoder_tokens, chosen->decoder_tokens);  // one token stream per map
                    if (scope == 0) QCOMPARE(s.kind, chosen->kind);
                    for (int64_t t = 0; t < s.tokens; ++t)
                        QCOMPARE(int(map->cells()[r][size_t(t)]), argmaxScore(s, t));
                }
                const auto& pieces = chosen->decoder_tokens ? d.trace.decoder_pieces : d.trace.encoder_pieces;
                QCOMPARE(map->tokenLabels().size(), int(pieces.size()));
            }
        }
        // Same-kind scope over an encoder module: one row per encoder layer.
        probe->scopeSelector()->setCurrentIndex(0);
        probe->selectSite("encoder.block.0.layer.0.SelfAttention.q");
        QCOMPARE(int(map->rowSites().size()), int(t5_.config.num_layers));
        const QString tip = map->describeCell(1, 1);
        QVERIFY2(tip.contains(QString::fromStdString(d.trace.encoder_pieces[1])), qPrintable(tip));
        QVERIFY2(tip.contains("encoder.block.1.layer.0.SelfAttention.q"), qPrintable(tip));
        QVERIFY2(tip.contains(
                     ui::keptSummary(d.trace, *d.trace.find("encoder.block.1.layer.0.SelfAttention.q"), 1)),
                 qPrintable(tip));
    }

    void gateScoresAreTheTracesScores() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        const ProbeOutcome d = direct("phatgoose", 2);
        ui::GateScoresView* gates = probe->gateScores();
        struct Pick {
            const char* site;
            bool decoder;
            int token;
        };
        for (const Pick& p : {Pick{"encoder.block.0.layer.1.DenseReluDense.wi_1", false, 2},
                              Pick{"decoder.block.1.layer.0.SelfAttention.o", true, 1},
                              Pick{"decoder.block.2.layer.1.EncDecAttention.v", false, 3}}) {
            probe->selectSite(p.site);
            probe->selectToken(p.decoder, p.token);
            const SiteRouting& s = *d.trace.find(p.site);
            QVERIFY(gates->showsScores());
            QCOMPARE(int(gates->bars().size()), 3);
            for (size_t c = 0; c < s.candidates.size(); ++c)
                QVERIFY(std::abs(gates->bars()[size_t(s.candidates[c])] -
                                 s.scores[size_t(p.token) * s.candidates.size() + c]) < 1e-6);
            QCOMPARE(gates->highlighted(), keptSet(s, p.token));
            // Below: the token's top-1 expert at every module of its stream.
            const std::vector<int>& sites = gates->moduleSites();
            QCOMPARE(sites.size(), gates->moduleTopExperts().size());
            for (size_t i = 0; i < sites.size(); ++i) {
                const SiteRouting& m = d.trace.sites[size_t(sites[i])];
                QCOMPARE(m.decoder_tokens, p.decoder);
                QCOMPARE(gates->moduleTopExperts()[i], argmaxScore(m, p.token));
            }
        }
    }

    void clickingACellSelectsItsToken() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        ui::RoutingHeatmap* map = probe->heatmap();
        probe->selectSite("encoder.block.0.layer.0.SelfAttention.k");
        map->plot()->replot();  // lays the axes out, so that coordinates map to pixels
        QSignalSpy selected(map, &ui::RoutingHeatmap::tokenSelected);
        QTest::mouseClick(map->plot(), Qt::LeftButton, {}, map->cellCentre(3, 1));
        QCOMPARE(selected.count(), 1);
        QCOMPARE(selected.at(0).at(0).toBool(), false);
        QCOMPARE(selected.at(0).at(1).toInt(), 3);
        QCOMPARE(probe->selectedToken(false), 3);
        QCOMPARE(map->selectedToken(), 3);
        QCOMPARE(probe->inputTokens()->selected(), 3);
        // A decoder module's column picks a decoder token; in the top-1 mode the row picks the module too.
        probe->viewSelector()->setCurrentIndex(1);
        probe->scopeSelector()->setCurrentIndex(1);
        probe->selectSite("decoder.block.0.layer.0.SelfAttention.q");
        map->plot()->replot();
        const int row = 4;
        const QString row_site =
            QString::fromStdString(probe->trace().sites[size_t(map->rowSites()[row])].site);
        QTest::mouseClick(map->plot(), Qt::LeftButton, {}, map->cellCentre(1, row));
        QCOMPARE(selected.count(), 2);
        QCOMPARE(selected.at(1).at(0).toBool(), true);
        QCOMPARE(probe->selectedToken(true), 1);
        QCOMPARE(probe->siteSelector()->currentText(), row_site);
        QCOMPARE(probe->outputTokens()->selected(), 1);
    }

    void singleAndExampleMethodsProbe() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        probe->methodPicker()->setMethod("single");
        probe->methodPicker()->setExpert("count");
        QCOMPARE(probe->methodPicker()->expert(), QString("count"));
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        QVERIFY(shown.wait(60000));
        const auto& names = probe->trace().expert_names;
        const int count = int(std::find(names.begin(), names.end(), "count") - names.begin());
        for (const SiteRouting& s : probe->trace().sites)
            for (int32_t e : s.experts) QCOMPARE(e, count);
        QVERIFY(!probe->gateScores()->showsScores());  // single records weights only
        for (const char* method : {"retrieval", "average-activation", "merge", "base"}) {
            probe->methodPicker()->setMethod(method);
            probe->run();
            QVERIFY2(shown.wait(60000), method);
            QCOMPARE(QString::fromStdString(probe->trace().method), QString(method));
        }
        QVERIFY(probe->trace().sites.empty());  // base routes nothing; the heatmap says so
        QVERIFY(probe->heatmap()->cells().empty());
    }

    void compareMatchesARecomputation() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::CompareView* compare = window->compareView();
        QVERIFY(compare);
        compare->setPrompt(kPrompt);
        struct Case {
            const char *a, *b;
            int ka, kb;
        };
        for (const Case& c : {Case{"phatgoose", "arrow", 2, 1}, Case{"phatgoose", "phatgoose", 2, 2},
                              Case{"arrow", "single", 2, 1}}) {
            compare->pickerA()->setMethod(c.a);
            compare->pickerA()->setTopK(c.ka);
            compare->pickerB()->setMethod(c.b);
            compare->pickerB()->setTopK(c.kb);
            compare->pickerB()->setExpert("reverse");
            QSignalSpy shown(compare, &ui::CompareView::resultShown);
            compare->run();
            QVERIFY(shown.wait(60000));
            const ProbeOutcome a = direct(c.a, c.ka);
            const ProbeOutcome b = direct(c.b, c.kb, "reverse");
            const std::vector<double> expected = differingFractions(a.trace, b.trace);
            QCOMPARE(compare->moduleBars().size(), expected.size());
            for (size_t i = 0; i < expected.size(); ++i)
                QVERIFY(std::abs(compare->moduleBars()[i] - expected[i]) < 1e-12);
            const ui::RoutingDifference& diff = compare->difference();
            if (std::string(c.a) == c.b && c.ka == c.kb) {
                QCOMPARE(diff.mean_jaccard, 1.0);
                QCOMPARE(diff.differing_fraction, 0.0);
                for (double f : compare->moduleBars()) QCOMPARE(f, 0.0);
            } else {
                QVERIFY(diff.differing_fraction > 0);
            }
            // The heatmaps draw 1 - Jaccard of the kept sets, token by token.
            for (ui::DifferenceHeatmap* map : {compare->encoderMap(), compare->decoderMap()})
                for (size_t r = 0; r < map->rowModules().size(); ++r) {
                    const ui::ModuleDifference& m = diff.modules[size_t(map->rowModules()[r])];
                    const SiteRouting& sa = *a.trace.find(m.site);
                    const SiteRouting& sb = *b.trace.find(m.site);
                    for (size_t t = 0; t < m.token_difference.size(); ++t) {
                        const std::set<int> ka = keptSet(sa, int64_t(t)), kb = keptSet(sb, int64_t(t));
                        std::vector<int> both;
                        std::set_intersection(ka.begin(), ka.end(), kb.begin(), kb.end(),
                                              std::back_inserter(both));
                        const double j = double(both.size()) / double(ka.size() + kb.size() - both.size());
                        QVERIFY(std::abs(map->cells()[r][t] - (1.0 - j)) < 1e-12);
                    }
                }
            QVERIFY(compare->summary().contains(QString::number(diff.mean_jaccard, 'f', 3)));
        }
    }

    // What-if: excluding an expert in the picker routes without it: the trace lists only the others and no
    // token keeps it; Compare with the exclusion on side B puts the ablated run beside the original. (That
    // the exclusion equals a library folder without the expert, logit for logit, is test_cli's
    // excludeEqualsALibraryWithoutTheExpert.)
    void excludingAnExpertRoutesWithoutIt() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        QCOMPARE(probe->methodPicker()->excludeButton()->menu()->actions().size(), 3);
        probe->methodPicker()->setExcluded({"count"});
        QCOMPARE(probe->methodPicker()->excluded(), QStringList{"count"});
        QVERIFY(probe->methodPicker()->excludeButton()->text().contains("1"));
        probe->setPrompt(
            kPrompt);  // opening the workspace may have put its example prompt in the field since
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        QVERIFY(shown.wait(60000));
        std::vector<std::string> others;
        std::vector<LoraExpert> smaller;
        for (const LoraExpert& e : experts_)
            if (e.name != "count") {
                others.push_back(e.name);
                smaller.push_back(e);
            }
        QCOMPARE(probe->trace().expert_names, others);
        const ProbeOutcome expected =
            probePrompt(t5_, smaller, {.method = "phatgoose", .top_k = 2}, kPrompt, 16);
        QCOMPARE(probe->trace().toJson(), expected.trace.toJson());
        for (const SiteRouting& site : probe->trace().sites)
            for (int32_t e : site.experts) QVERIFY(e >= 0 && e < 2);

        ui::CompareView* compare = window->compareView();
        compare->setPrompt(kPrompt);
        compare->pickerA()->setMethod("phatgoose");
        compare->pickerB()->setMethod("phatgoose");
        compare->pickerA()->setExcluded({});
        compare->pickerB()->setExcluded({"count"});
        QSignalSpy compared(compare, &ui::CompareView::resultShown);
        compare->run();
        QVERIFY(compared.wait(60000));
        QCOMPARE(compare->difference().modules.empty(), false);
        QVERIFY(compare->summary().size() > 0);
    }

    // What-if: an expert pinned on a span of input tokens in the picker gives the backend's probe with that
    // pin (which test_routing proves equals `single` on pinned tokens); Compare labels the pinned side; a
    // method without top-k has no pin to set.
    void pinningAnExpertInTheProbeAndCompare() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        ui::RoutingMethodPicker* picker = probe->methodPicker();
        QVERIFY(picker->pinButton()->isEnabled());
        const TokenPin pin{.expert = "count", .first = 1, .last = 2};
        picker->setPin(pin);
        QCOMPARE(picker->pinButton()->text(), QString("pin: count 1-2"));
        probe->setPrompt(kPrompt);
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        QVERIFY(shown.wait(60000));
        const ProbeOutcome expected =
            probePrompt(t5_, experts_, {.method = "phatgoose", .top_k = 2, .pin = pin}, kPrompt, 16);
        QCOMPARE(probe->trace().toJson(), expected.trace.toJson());
        const int count =
            int(std::find(probe->trace().expert_names.begin(), probe->trace().expert_names.end(), "count") -
                probe->trace().expert_names.begin());
        const SiteRouting& first = probe->trace().sites.front();
        for (int64_t t : {1, 2}) {
            QCOMPARE(first.experts[size_t(t * first.k)], count);
            QCOMPARE(first.weights[size_t(t * first.k)], 1.0f);
        }

        ui::CompareView* compare = window->compareView();
        compare->setPrompt(kPrompt);
        compare->pickerA()->setMethod("phatgoose");
        compare->pickerB()->setMethod("phatgoose");
        compare->pickerA()->setPin({});
        compare->pickerB()->setPin(pin);
        QSignalSpy compared(compare, &ui::CompareView::resultShown);
        compare->run();
        QVERIFY(compared.wait(60000));
        QStringList labels;
        for (const QLabel* l : compare->findChildren<QLabel*>()) labels << l->text();
        QVERIFY2(labels.join("\n").contains("count pinned on tokens 1-2"), qPrintable(labels.join("\n")));

        picker->setMethod("merge");
        QVERIFY(!picker->pinButton()->isEnabled());
        ui::ProbeRequest request;
        picker->applyTo(request);
        QVERIFY(!request.pin.active());
        picker->setMethod("phatgoose");
        picker->setPin({});
    }

    // A workspace's example prompt fills only an untouched field: after a run (or a prompt set on purpose)
    // the field keeps showing the prompt whose result is on screen.
    void theRunPromptStaysInTheField() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        QCoreApplication::processEvents();
        QCOMPARE(window->probeView()->prompt(), kPrompt);
        window->probeView()->suggestPrompt("an example from the workspace");
        QCOMPARE(window->probeView()->prompt(), kPrompt);
        ui::MainWindow fresh;
        fresh.probeView()->suggestPrompt("an example from the workspace");
        QCOMPARE(fresh.probeView()->prompt(), QString("an example from the workspace"));
    }

    void routingDifferenceEdgeCases() {
        const ProbeOutcome p = direct("phatgoose", 2), merge = direct("merge", 1);
        const ui::RoutingDifference d = ui::compareRouting(p.trace, merge.trace);
        QVERIFY(d.modules.empty());  // merge records no routing
        QCOMPARE(d.only_a.size(), p.trace.sites.size());
        QCOMPARE(ui::jaccard({"a", "b"}, {"b", "c"}), 1.0 / 3.0);
        QCOMPARE(ui::jaccard({}, {}), 1.0);
        RoutingTrace x = p.trace, y = p.trace;
        y.decoder_pieces.at(2) = "something else";
        QCOMPARE(ui::agreeingDecoderPrefix(x, y), 2);
        for (const ui::ModuleDifference& m : ui::compareRouting(x, y).modules)
            if (m.decoder_tokens) QCOMPARE(int(m.token_difference.size()), 2);
    }

    void exportsRoundTrip() {
        auto window = probedWindow("phatgoose");
        QVERIFY(window);
        ui::ProbeView* probe = window->probeView();
        const QString json = tmp_.filePath("trace.json");
        QString error;
        QVERIFY2(probe->saveTrace(json, &error), qPrintable(error));
        QFile f(json);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const RoutingTrace back = RoutingTrace::fromJson(f.readAll().toStdString());
        QCOMPARE(back.toJson(), probe->trace().toJson());
        QCOMPARE(back.sites.size(), probe->trace().sites.size());
        QVERIFY(!probe->saveTrace(tmp_.filePath("no/such/folder/trace.json"), &error));
        QVERIFY(!error.isEmpty());

        QCustomPlot* plots[] = {probe->heatmap()->plot(), probe->gateScores()->scoresPlot(),
                                probe->gateScores()->modulesPlot(), window->compareView()->barsPlot()};
        for (size_t i = 0; i < std::size(plots); ++i) {
            const QString png = tmp_.filePath(QString("plot%1.png").arg(i)),
                          pdf = tmp_.filePath(QString("plot%1.pdf").arg(i));
            QVERIFY2(ui::savePlot(plots[i], png, &error), qPrintable(error));
            QVERIFY2(ui::savePlot(plots[i], pdf, &error), qPrintable(error));
            QVERIFY(!QImage(png).isNull());
            QFile p(pdf);
            QVERIFY(p.open(QIODevice::ReadOnly));
            QVERIFY(p.read(4) == "%PDF");
        }
        QVERIFY(!ui::savePlot(plots[0], tmp_.filePath("plot.bmp"), &error));
    }

    // With PHATGOOSE_SCREENSHOT_DIR set: the probe (both heatmap modes) and the Compare view as PNG, on the
    // workspace in PHATGOOSE_SCREENSHOT_WORKSPACE when given (the demo), else the tiny one.
    void screenshots() {
        // Without PHATGOOSE_SCREENSHOT_DIR the views still render, into a folder that is thrown away.
        QTemporaryDir scratch;
        const QString dir = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_DIR", scratch.path());
        if (qEnvironmentVariableIsSet("PHATGOOSE_SCREENSHOT_WORKSPACE"))
            workspace_ = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_WORKSPACE");
        const QString prompt = qEnvironmentVariable("PHATGOOSE_SCREENSHOT_PROMPT", kPrompt);
        ui::MainWindow window;
        window.resize(1500, 950);
        window.show();
        window.openWorkspace(workspace_);
        ui::ProbeView* probe = window.probeView();
        window.tabs()->setCurrentWidget(probe);
        probe->setPrompt(prompt);
        probe->setMethod("phatgoose");
        QSignalSpy shown(probe, &ui::ProbeView::resultShown);
        probe->run();
        QVERIFY(shown.wait(120000));
        probe->selectSite(QString::fromStdString(probe->trace().sites.at(0).site));
        probe->selectToken(false, 2);
        QTest::qWait(200);
        QVERIFY(window.grab().save(dir + "/probe.png"));
        probe->viewSelector()->setCurrentIndex(1);
        probe->scopeSelector()->setCurrentIndex(1);
        QTest::qWait(200);
        QVERIFY(window.grab().save(dir + "/probe_top1.png"));
        // What-if: the library's first expert pinned on input tokens 2-4.
        const QString pinned = QString::fromStdString(probe->trace().expert_names.at(0));
        probe->methodPicker()->setPin({.expert = pinned.toStdString(), .first = 2, .last = 4});
        probe->viewSelector()->setCurrentIndex(0);
        probe->run();
        QVERIFY(shown.wait(120000));
        QTest::qWait(200);
        QVERIFY(window.grab().save(dir + "/probe_pinned.png"));
        auto* form =
            qobject_cast<QWidgetAction*>(probe->methodPicker()->pinButton()->menu()->actions().at(0));
        QVERIFY(form && form->defaultWidget()->grab().save(dir + "/probe_pin_form.png"));
        probe->methodPicker()->setPin({});
        ui::CompareView* compare = window.compareView();
        window.tabs()->setCurrentWidget(compare);
        compare->setPrompt(prompt);
        compare->pickerA()->setMethod("phatgoose");
        compare->pickerA()->setTopK(2);
        compare->pickerB()->setMethod("arrow");
        compare->pickerB()->setTopK(2);
        QSignalSpy compared(compare, &ui::CompareView::resultShown);
        compare->run();
        QVERIFY(compared.wait(120000));
        QTest::qWait(200);
        QVERIFY(window.grab().save(dir + "/compare.png"));
    }
};

QTEST_MAIN(GuiProbeTest)
#include "test_gui_probe.moc"
