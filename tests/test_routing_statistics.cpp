// Routing statistics over datasets (routing/routing_analysis.h) against a direct re-computation: every
// example run alone through the same router (no padding), its RoutingTrace read row by row. Padded batches
// of unequal lengths must give the same sums, so pads are excluded; encoder and decoder sites both checked.
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "error.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "model/t5_loader.h"
#include "routing/routing_analysis.h"
#include "routing/routing_summary.h"

using namespace phatgoose;
namespace fs = std::filesystem;

namespace {

struct Sums {
    int64_t tokens = 0;
    std::vector<double> weight;
    std::vector<int64_t> kept, top1;
    double entropy = 0.0;
};

// site -> sums over the examples' traces, every row of each (one example at a time: no pads).
std::map<std::string, Sums> directSums(T5ModelImpl& model, Router& router, const RoutingDataset& d) {
    std::map<std::string, Sums> out;
    torch::InferenceMode guard;
    const T5Config& c = model.config();
    for (size_t i = 0; i < d.inputs.size(); ++i) {
        std::vector<int64_t> shifted{c.decoder_start_token_id};
        shifted.insert(shifted.end(), d.targets[i].begin(), d.targets[i].end() - 1);
        router.clearTrace();
        router.beginBatch({d.inputs[i]});
        const torch::Tensor ids = torch::tensor(d.inputs[i]).unsqueeze(0);
        const torch::Tensor enc = model.encode(ids, torch::ones_like(ids));
        model.decode(torch::tensor(shifted).unsqueeze(0), enc, torch::ones_like(ids));
        for (const SiteRouting& s : router.trace().sites) {
            Sums& sums = out[s.site];
            const size_t n = router.trace().expert_names.size();
            if (sums.weight.empty()) {
                sums.weight.assign(n, 0.0);
                sums.kept.assign(n, 0);
                sums.top1.assign(n, 0);
            }
            for (int64_t t = 0; t < s.tokens; ++t) {
                sums.tokens += 1;
                for (int64_t j = 0; j < s.k; ++j) {
                    const auto e = size_t(s.experts[size_t(t * s.k + j)]);
                    const double w = s.weights[size_t(t * s.k + j)];
                    sums.weight[e] += w;
                    sums.kept[e] += 1;
                    if (j == 0) sums.top1[e] += 1;
                    sums.entropy -= w > 0 ? w * std::log(w) : 0.0;
                }
            }
        }
    }
    router.clearTrace();
    return out;
}

std::vector<int64_t> ids(std::initializer_list<int64_t> list) {
    return list;
}

}  // namespace

class RoutingStatisticsTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    PretrainedT5 t5_;
    std::vector<LoraExpert> experts_;
    std::vector<RoutingDataset> datasets_;

private Q_SLOTS:
    void initTestCase() {
        const fs::path dir = fs::path(tmp_.path().toStdString()) / "tiny";
        phatgoose::testing::writeTinyT5(dir, {.gated = true});
        t5_ = loadPretrainedT5(dir);
        experts_ = phatgoose::testing::randomExperts(4, t5_.config, 7);
        // Unequal lengths in every batch of 3, so that most batches carry pads on both sides.
        datasets_.push_back(
            {.name = "first",
             .inputs = {ids({5, 9, 13, 1}), ids({7, 1}), ids({4, 4, 8, 15, 16, 23, 1}), ids({11, 12, 1}),
                        ids({30, 31, 32, 33, 1})},
             .targets = {ids({6, 1}), ids({8, 9, 10, 1}), ids({1}), ids({14, 15, 1}), ids({17, 1})}});
        datasets_.push_back({.name = "second",
                             .inputs = {ids({20, 21, 1}), ids({22, 1}), ids({23, 24, 25, 26, 27, 1})},
                             .targets = {ids({5, 5, 5, 1}), ids({1}), ids({9, 1})}});
    }

    void equalsPerExampleTraces_data() {
        QTest::addColumn<QString>("method");
        QTest::addColumn<int>("k");
        QTest::newRow("phatgoose top-2") << "phatgoose" << 2;
        QTest::newRow("phatgoose top-1") << "phatgoose" << 1;
        QTest::newRow("arrow top-2") << "arrow" << 2;
    }
    void equalsPerExampleTraces() {
        QFETCH(QString, method);
        QFETCH(int, k);
        RoutingSpec spec{.method = method.toStdString(), .top_k = k};
        spec.record_trace = true;
        auto router = makeRouter(*t5_.model, experts_, spec);
        const RoutingAnalysis analysis = analyseRouting(*t5_.model, *router, datasets_, {.batch_size = 3});
        QVERIFY(!analysis.cancelled);
        const RoutingStatistics& stats = analysis.statistics;
        QCOMPARE(stats.method, method.toStdString());
        QCOMPARE(stats.top_k, int64_t(k));
        QCOMPARE(stats.datasets.size(), datasets_.size());
        for (size_t d = 0; d < datasets_.size(); ++d) {
            const DatasetRoutingStatistics& got = stats.datasets[d];
            QCOMPARE(got.name, datasets_[d].name);
            QCOMPARE(got.examples, int64_t(datasets_[d].inputs.size()));
            int64_t input_tokens = 0, target_tokens = 0;
            for (const auto& v : datasets_[d].inputs) input_tokens += int64_t(v.size());
            for (const auto& v : datasets_[d].targets) target_tokens += int64_t(v.size());
            const auto expected = directSums(*t5_.model, *router, datasets_[d]);
            QCOMPARE(got.sites.size(), expected.size());
            bool saw_encoder = false, saw_decoder = false;
            for (const SiteStatistics& s : got.sites) {
                const Sums& e = expected.at(s.site);
                // Pads excluded: exactly the real tokens of the side the site routes.
                QCOMPARE(s.tokens, s.decoder_tokens ? target_tokens : input_tokens);
                QCOMPARE(s.tokens, e.tokens);
                QCOMPARE(s.kept, e.kept);
                QCOMPARE(s.top1, e.top1);
                for (size_t x = 0; x < e.weight.size(); ++x)
                    QVERIFY(std::abs(s.weight_sum[x] - e.weight[x]) < 1e-4);
                QVERIFY(std::abs(s.entropy_sum - e.entropy) < 1e-4);
                // Shares: weights sum to one per token, k experts kept, one first choice.
                const auto w = s.meanWeight(), kept = s.keptShare(), top1 = s.top1Share();
                QVERIFY(std::abs(std::accumulate(w.begin(), w.end(), 0.0) - 1.0) < 1e-5);
                QVERIFY(std::abs(std::accumulate(kept.begin(), kept.end(), 0.0) - double(k)) < 1e-9);
                QVERIFY(std::abs(std::accumulate(top1.begin(), top1.end(), 0.0) - 1.0) < 1e-9);
                QVERIFY(std::abs(s.entropy() - e.entropy / double(e.tokens)) < 1e-6);
                saw_encoder = saw_encoder || !s.decoder_tokens;
                saw_decoder = saw_decoder || s.decoder_tokens;
            }
            QVERIFY(saw_encoder && saw_decoder);
        }
    }

    // The load is the coefficient of variation of the kept shares: 0 when even, sqrt(N - 1) when one
    // expert takes every token (top-1).
    void loadIsTheSpreadOfKeptShares() {
        SiteStatistics even{.site = "s",
                            .decoder_tokens = false,
                            .tokens = 8,
                            .weight_sum = {4, 4, 4, 4},
                            .kept = {4, 4, 4, 4},
                            .top1 = {2, 2, 2, 2},
                            .entropy_sum = 0};
        QCOMPARE(even.load(), 0.0);
        SiteStatistics one{.site = "s",
                           .decoder_tokens = false,
                           .tokens = 8,
                           .weight_sum = {8, 0, 0, 0},
                           .kept = {8, 0, 0, 0},
                           .top1 = {8, 0, 0, 0},
                           .entropy_sum = 0};
        QVERIFY(std::abs(one.load() - std::sqrt(3.0)) < 1e-12);
    }

    void jsonHasTheDocumentedShape() {
        RoutingSpec spec{.method = "phatgoose", .top_k = 2};
        spec.record_trace = true;
        auto router = makeRouter(*t5_.model, experts_, spec);
        const RoutingStatistics stats = analyseRouting(*t5_.model, *router, datasets_).statistics;
        const auto j = nlohmann::json::parse(stats.toJson());
        QCOMPARE(j.at("expert_names").size(), experts_.size());
        QCOMPARE(j.at("method").get<std::string>(), std::string("phatgoose"));
        QCOMPARE(j.at("top_k").get<int>(), 2);
        const auto& site = j.at("datasets").at(1).at("sites").at(0);
        for (const char* key : {"site", "decoder_tokens", "tokens", "mean_weight", "kept_share", "top1_share",
                                "entropy", "load"})
            QVERIFY2(site.contains(key), key);
        QCOMPARE(site.at("mean_weight").size(), experts_.size());
        QCOMPARE(site.at("site").get<std::string>(), router->trace().sites.at(0).site);
    }

    void cancelStopsBetweenBatches() {
        RoutingSpec spec{.method = "phatgoose", .top_k = 2};
        spec.record_trace = true;
        auto router = makeRouter(*t5_.model, experts_, spec);
        std::atomic<bool> cancel{false};
        int batches = 0;
        RoutingAnalysisOptions options{.batch_size = 2, .progress = {}, .cancel = &cancel};
        options.progress = [&](const RoutingAnalysisProgress& p) {
            ++batches;
            QCOMPARE(p.examples_total, int64_t(8));
            if (p.dataset == "second") cancel = true;  // after the first dataset is complete
        };
        const RoutingAnalysis a = analyseRouting(*t5_.model, *router, datasets_, options);
        QVERIFY(a.cancelled);
        QCOMPARE(a.statistics.datasets.size(), size_t(1));
        QCOMPARE(batches, 4);  // three batches of "first", one of "second"
    }

    void siteNamesParse_data() {
        QTest::addColumn<QString>("site");
        QTest::addColumn<bool>("decoder");
        QTest::addColumn<int>("block");
        QTest::addColumn<QString>("kind");
        QTest::newRow("encoder q") << "encoder.block.0.layer.0.SelfAttention.q" << false << 0
                                   << "SelfAttention.q";
        QTest::newRow("cross k") << "decoder.block.11.layer.1.EncDecAttention.k" << true << 11
                                 << "EncDecAttention.k";
        QTest::newRow("gated wi_1") << "decoder.block.3.layer.2.DenseReluDense.wi_1" << true << 3
                                    << "DenseReluDense.wi_1";
    }
    void siteNamesParse() {
        QFETCH(QString, site);
        QFETCH(bool, decoder);
        QFETCH(int, block);
        QFETCH(QString, kind);
        const SiteAddress a = parseSiteName(site.toStdString());
        QCOMPARE(a.decoder, decoder);
        QCOMPARE(a.block, int64_t(block));
        QCOMPARE(a.kind, kind.toStdString());
        for (const char* bad :
             {"", "encoder", "middle.block.0.layer.0.SelfAttention.q",
              "encoder.block.x.layer.0.SelfAttention.q", "encoder.block.-1.layer.0.SelfAttention.q",
              "encoder.block.0.layer.0.SelfAttention"})
            QVERIFY_THROWS_EXCEPTION(Error, parseSiteName(bad));
    }

    // The datasets x experts matrix, a layer profile and the similarity order, against hand-made statistics.
    void summariesOfHandMadeStatistics() {
        auto site = [](const std::string& name, std::vector<double> mean) {
            SiteStatistics s;
            s.site = name;
            s.decoder_tokens =
                name.rfind("decoder", 0) == 0 && name.find("EncDecAttention.k") == std::string::npos;
            s.tokens = 4;
            for (double& v : mean) v *= 4.0;  // sums over 4 tokens
            s.weight_sum = mean;
            s.kept.assign(mean.size(), 0);
            s.top1.assign(mean.size(), 0);
            return s;
        };
        RoutingStatistics stats;
        stats.expert_names = {"a", "b"};
        const std::string e0q = "encoder.block.0.layer.0.SelfAttention.q",
                          e1q = "encoder.block.1.layer.0.SelfAttention.q";
        const std::string e1wo = "encoder.block.1.layer.1.DenseReluDense.wo",
                          d0q = "decoder.block.0.layer.0.SelfAttention.q";
        stats.datasets.push_back({.name = "x",
                                  .examples = 1,
                                  .sites = {site(e0q, {1.0, 0.0}), site(e1q, {0.5, 0.5}),
                                            site(e1wo, {0.0, 1.0}), site(d0q, {0.25, 0.75})}});
        stats.datasets.push_back({.name = "y",
                                  .examples = 1,
                                  .sites = {site(e0q, {0.0, 1.0}), site(e1q, {0.0, 1.0}),
                                            site(e1wo, {0.0, 1.0}), site(d0q, {0.0, 1.0})}});
        stats.datasets.push_back({.name = "z",
                                  .examples = 1,
                                  .sites = {site(e0q, {1.0, 0.0}), site(e1q, {0.5, 0.5}),
                                            site(e1wo, {0.0, 1.0}), site(d0q, {0.25, 0.75})}});
        const auto all = datasetExpertWeights(stats, {});
        QCOMPARE(all[0], (std::vector<double>{(1.0 + 0.5 + 0.0 + 0.25) / 4, (0.0 + 0.5 + 1.0 + 0.75) / 4}));
        const auto encoder_q = datasetExpertWeights(
            stats, {.stack = ModuleSelection::Stack::Encoder, .block = -1, .kind = "SelfAttention.q"});
        QCOMPARE(encoder_q[0], (std::vector<double>{0.75, 0.25}));
        const auto decoder =
            datasetExpertWeights(stats, {.stack = ModuleSelection::Stack::Decoder, .block = -1, .kind = ""});
        QCOMPARE(decoder[0], (std::vector<double>{0.25, 0.75}));
        const auto block1 =
            datasetExpertWeights(stats, {.stack = ModuleSelection::Stack::Both, .block = 1, .kind = ""});
        QCOMPARE(block1[0], (std::vector<double>{0.25, 0.75}));
        // Expert a's profile over the encoder's blocks: block 0 = 1.0, block 1 = mean(0.5, 0.0).
        QCOMPARE(layerProfile(stats.datasets[0], 0, false), (std::vector<double>{1.0, 0.25}));
        QCOMPARE(layerProfile(stats.datasets[0], 0, false, "SelfAttention.q"),
                 (std::vector<double>{1.0, 0.5}));
        QCOMPARE(layerProfile(stats.datasets[0], 1, true), (std::vector<double>{0.75}));
        // x and z route identically: cosine 1, and the order puts them side by side.
        const auto similarity = cosineSimilarity(all);
        QVERIFY(std::abs(similarity[0][2] - 1.0) < 1e-12);
        QVERIFY(similarity[0][1] < 0.9);
        QCOMPARE(similarityOrder(all), (std::vector<size_t>{0, 2, 1}));
        QCOMPARE(cosineSimilarity({{0.0, 0.0}, {1.0, 0.0}})[0][1], 0.0);
    }

    void refusesBadInput() {
        RoutingSpec spec{.method = "phatgoose", .top_k = 2};
        auto untraced = makeRouter(*t5_.model, experts_, spec);
        QVERIFY_THROWS_EXCEPTION(Error, analyseRouting(*t5_.model, *untraced, datasets_));
        untraced.reset();
        spec.record_trace = true;
        auto router = makeRouter(*t5_.model, experts_, spec);
        RoutingDataset uneven{.name = "uneven", .inputs = {ids({5, 1})}, .targets = {}};
        QVERIFY_THROWS_EXCEPTION(Error, analyseRouting(*t5_.model, *router, {uneven}));
        RoutingDataset outside{.name = "outside", .inputs = {ids({5, 1000000, 1})}, .targets = {ids({1})}};
        QVERIFY_THROWS_EXCEPTION(Error, analyseRouting(*t5_.model, *router, {outside}));
        QVERIFY_THROWS_EXCEPTION(Error, analyseRouting(*t5_.model, *router, datasets_, {.batch_size = 0}));
    }
};

QTEST_GUILESS_MAIN(RoutingStatisticsTest)
#include "test_routing_statistics.moc"
