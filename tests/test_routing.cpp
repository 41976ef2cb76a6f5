// Every routing method against a direct re-computation: PHATGOOSE's scores and weights, the efficient
// sparse path against the dense one, merge against hand-averaged deltas, the PEFT reference adapters.
#include <QTemporaryDir>
#include <QtTest>

#include "error.h"
#include "experts/lora_expert.h"
#include "fixtures/random_experts.h"
#include "fixtures/tiny_t5.h"
#include "model/generation.h"
#include "model/t5_loader.h"
#include "reference_case.h"
#include "routing/expert_stack.h"
#include "routing/router.h"

using namespace phatgoose;
using phatgoose::testing::randomExperts;
namespace fs = std::filesystem;

namespace {

const std::vector<int64_t> kInput = {5, 17, 33, 9, 41, 70, 12, 8, 99, 23, 4, 61, 1};
const std::vector<int64_t> kDecoder = {0, 7, 19, 3, 54, 30};

// Teacher-forced logits, decoded both in one pass (many rows per expert) and one token at a time with the
// cache (one row per expert); returns the one-pass logits after checking the two agree.
torch::Tensor logits(T5ModelImpl& m, const std::vector<int64_t>& input = kInput) {
    torch::InferenceMode guard;
    torch::Tensor ids = torch::tensor(input).unsqueeze(0), mask = torch::ones_like(ids);
    torch::Tensor enc = m.encode(ids, mask);
    torch::Tensor full = m.decode(torch::tensor(kDecoder).unsqueeze(0), enc, mask);
    DecoderCache cache;
    std::vector<torch::Tensor> steps;
    for (int64_t t : kDecoder)
        steps.push_back(m.decode(torch::tensor(std::vector<int64_t>{t}).unsqueeze(0), enc, mask, &cache));
    const double diff = (torch::cat(steps, 1) - full).abs().max().item<double>();
    if (diff > 1e-4)
        throw std::runtime_error("cached and one-pass routed logits differ by " + std::to_string(diff));
    return full;
}

double maxDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>();
}

torch::Tensor standardizeDouble(const torch::Tensor& v) {
    torch::Tensor d = v.to(torch::kDouble);
    torch::Tensor mean = d.mean(-1, true);
    return (d - mean) / torch::sqrt((d - mean).pow(2).mean(-1, true) + 1e-5);
}

}  // namespace

class RoutingTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    PretrainedT5 t5_;

    void expectError(const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
                     const QString& fragment) {
        try {
            makeRouter(*t5_.model, experts, spec);
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(fragment), e.what());
            return;
        }
        QFAIL("makeRouter accepted a bad spec");
    }

    // Logits while a router built from `spec` is attached; it detaches before returning.
    torch::Tensor logitsUnder(const std::vector<LoraExpert>& experts, const RoutingSpec& spec,
                              const ExpertExamples* examples = nullptr) {
        auto router = makeRouter(*t5_.model, experts, spec, examples);
        return logits(*t5_.model);
    }

private Q_SLOTS:
    void initTestCase() {
        const fs::path dir = fs::path(tmp_.path().toStdString()) / "tiny";
        phatgoose::testing::writeTinyT5(dir, {.gated = true});
        t5_ = loadPretrainedT5(dir);
    }

    // The sparse path (one token while decoding, whole sequences in the encoder) equals applying every
    // expert and weighting by the sparse routing, for every token-wise method and several k.
    void sparseEqualsDense_data() {
        QTest::addColumn<QString>("method");
        QTest::addColumn<int>("k");
        for (int k : {1, 2, 5}) QTest::addRow("phatgoose k=%d", k) << "phatgoose" << k;
        QTest::newRow("arrow k=2") << "arrow" << 2;
    }
    void sparseEqualsDense() {
        QFETCH(QString, method);
        QFETCH(int, k);
        auto experts = randomExperts(5, t5_.config);
        const torch::Tensor fast = logitsUnder(experts, {.method = method.toStdString(), .top_k = k});
        const torch::Tensor dense =
            logitsUnder(experts, {.method = method.toStdString(), .top_k = k, .dense_reference = true});
        // Through the whole network float rounding of the two summation orders compounds a little.
        const double diff = maxDiff(fast, dense);
        QVERIFY2(diff < 5e-5, qPrintable(QString("sparse and dense differ by %1").arg(diff)));
        QVERIFY(maxDiff(fast, logits(*t5_.model)) > 1e-3);  // the experts do change the output
    }

    // At one layer, the sparse kernels (1 to 300 tokens; the ATen path under autograd) equal the dense
    // reference within 1e-5.
    void stackKernelsEqualDense_data() {
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("k");
        QTest::addColumn<bool>("autograd");  // the ATen path that training through routed layers takes
        for (int tokens : {1, 3, 40, 300})
            for (int k : {1, 2, 5}) QTest::addRow("%d tokens, k=%d", tokens, k) << tokens << k << false;
        QTest::newRow("40 tokens, k=2, autograd") << 40 << 2 << true;
    }
    void stackKernelsEqualDense() {
        QFETCH(int, tokens);
        QFETCH(int, k);
        QFETCH(bool, autograd);
        auto experts = randomExperts(6, t5_.config, 3);
        const std::string site = "decoder.block.1.layer.2.DenseReluDense.wo";
        std::vector<const LoraExpert*> ptrs;
        std::vector<int64_t> ids;
        for (size_t i = 0; i < experts.size(); ++i) ptrs.push_back(&experts[i]), ids.push_back(int64_t(i));
        ExpertStack stack(site, ptrs, ids);
        c10::InferenceMode guard(!autograd);
        torch::Tensor x = torch::randn({tokens, stack.dIn()}).requires_grad_(autograd);
        auto [w, chosen] = torch::randn({tokens, 6}).topk(k, 1);
        torch::Tensor weights = torch::softmax(w, 1);
        torch::Tensor sparse = torch::zeros({tokens, stack.dOut()});
        stack.addInto(sparse, x, chosen, weights);
        QCOMPARE(sparse.requires_grad(), autograd);
        const double diff = maxDiff(sparse, stack.applyDense(x, chosen, weights));
        QVERIFY2(diff < 1e-5, qPrintable(QString("differ by %1").arg(diff)));
    }

    // Experts saved and loaded as BF16 or F16 stay in that dtype (mapped, not widened), and routing them
    // equals routing the same values widened to float32 in memory; the base model in BF16 likewise.
    void halfPrecisionExpertsRouteLikeTheirWidenedValues_data() {
        QTest::addColumn<int>("dtype");
        QTest::newRow("BF16") << int(DType::BF16);
        QTest::newRow("F16") << int(DType::F16);
    }
    void halfPrecisionExpertsRouteLikeTheirWidenedValues() {
        QFETCH(int, dtype);
        const auto stored = DType(dtype) == DType::BF16 ? torch::kBFloat16 : torch::kHalf;
        std::vector<LoraExpert> experts = randomExperts(4, t5_.config);
        std::vector<LoraExpert> loaded, widened;
        for (size_t i = 0; i < experts.size(); ++i) {
            const fs::path dir = fs::path(tmp_.path().toStdString()) /
                                 std::string("half").append(std::to_string(dtype)) /
                                 std::string("e").append(std::to_string(i));
            saveLoraExpert(experts[i], dir, DType(dtype));
            loaded.push_back(loadLoraExpert(dir, t5_.config));
            LoraExpert wide = loaded.back();
            for (auto& [path, m] : wide.modules) {
                QCOMPARE(loaded.back().modules.at(path).A.scalar_type(), stored);
                m.A = m.A.to(torch::kFloat);
                m.B = m.B.to(torch::kFloat);
            }
            widened.push_back(std::move(wide));
        }
        const RoutingSpec spec{.method = "phatgoose", .top_k = 2};
        const torch::Tensor half = logitsUnder(loaded, spec), wide = logitsUnder(widened, spec);
        QVERIFY2(maxDiff(half, wide) < 1e-5, qPrintable(QString("differ by %1").arg(maxDiff(half, wide))));
        QVERIFY(maxDiff(half, logits(*t5_.model)) > 1e-3);  // the experts do change the output
    }

    void oneExpertTopOneEqualsThatExpertAlone() {
        auto experts = randomExperts(1, t5_.config, 7);
        const torch::Tensor routed = logitsUnder(experts, {.method = "phatgoose", .top_k = 1});
        const torch::Tensor alone = logitsUnder(experts, {.method = "single", .expert = "expert0"});
        QVERIFY(maxDiff(routed, alone) < 1e-5);
    }

    // k = N over identical experts equals one of them, whatever the gates say: the weights sum to one.
    void identicalExpertsTopNEqualsOne() {
        auto experts = randomExperts(3, t5_.config, 9);
        for (auto& e : experts)
            for (auto& [site, m] : e.modules) {
                m.A = experts[0].modules.at(site).A;
                m.B = experts[0].modules.at(site).B;
            }
        const torch::Tensor all = logitsUnder(experts, {.method = "phatgoose", .top_k = 3});
        const torch::Tensor one = logitsUnder(experts, {.method = "single", .expert = "expert1"});
        QVERIFY(maxDiff(all, one) < 1e-5);
    }

    void identicalGatesGiveEqualWeights() {
        auto experts = randomExperts(2, t5_.config, 11);
        for (auto& [site, m] : experts[1].modules) m.gate = experts[0].modules.at(site).gate.clone();
        auto r = makeRouter(*t5_.model, experts, {.method = "phatgoose", .top_k = 2, .record_trace = true});
        logits(*t5_.model);
        for (const SiteRouting& s : r->trace().sites) {
            QVERIFY(s.tokens > 0);
            for (float w : s.weights) QVERIFY(std::abs(w - 0.5f) < 1e-6);
        }
    }

    // Scores recorded in the trace equal LN(u) . LN(v_i) / sqrt(d_in), recomputed here in double precision
    // from the layer's actual input; the kept experts are the top k and their weights a softmax over them.
    void phatgooseScoresMatchFormula() {
        auto experts = randomExperts(4, t5_.config, 13);
        auto r = makeRouter(*t5_.model, experts,
                            {.method = "phatgoose", .top_k = 2, .record_trace = true, .record_scores = true});
        torch::InferenceMode guard;
        torch::Tensor ids = torch::tensor(kInput).unsqueeze(0);
        t5_.model->encode(ids, torch::ones_like(ids));
        const std::string site = "encoder.block.0.layer.0.SelfAttention.q";
        const SiteRouting* trace = r->trace().find(site);
        QVERIFY(trace);
        QCOMPARE(trace->tokens, int64_t(kInput.size()));
        // The input to block 0's q is the first layer norm of the embeddings.
        torch::Tensor u =
            t5_.model->encoder->blocks[0]->layers[0]->layer_norm->forward(t5_.model->shared->forward(ids))[0];
        std::vector<torch::Tensor> gates;
        for (const auto& e : experts) gates.push_back(e.modules.at(site).gate);
        torch::Tensor expected = torch::mm(standardizeDouble(u), standardizeDouble(torch::stack(gates)).t()) /
                                 std::sqrt(double(u.size(1)));  // [tokens, 4]
        torch::Tensor got = torch::tensor(trace->scores).view({-1, 4}).to(torch::kDouble);
        QVERIFY(maxDiff(got, expected) < 1e-4);
        for (int64_t t = 0; t < trace->tokens; ++t) {
            auto [top, idx] = expected[t].topk(2);
            torch::Tensor w = torch::softmax(top, 0);
            for (int j = 0; j < 2; ++j) {
                QCOMPARE(int64_t(trace->experts[size_t(t * 2 + j)]), idx[j].item<int64_t>());
                QVERIFY(std::abs(trace->weights[size_t(t * 2 + j)] - w[j].item<double>()) < 1e-5);
            }
        }
    }

    void mergeEqualsHandAveragedDeltas() {
        auto experts = randomExperts(3, t5_.config, 17);
        const torch::Tensor merged = logitsUnder(experts, {.method = "merge"});
        T5Model copy(t5_.config);
        {
            torch::NoGradGuard no_grad;
            auto src = t5_.model->named_parameters();
            for (auto& p : copy->named_parameters()) p.value().copy_(*src.find(p.key()));
            for (auto& [site, linear] : copy->linears()) {
                torch::Tensor avg = torch::zeros_like(linear->weight);
                for (const auto& e : experts) {
                    const LoraModule& m = e.modules.at(site.path);
                    avg += e.scale() * torch::mm(m.B, m.A);
                }
                linear->weight += avg / 3.0;
            }
        }
        QVERIFY(maxDiff(merged, logits(*copy)) < 1e-4);
    }

    // Arrow's key is the top right-singular vector of B A; routing by |u . v| must equal that computed from a
    // full SVD of the dense delta.
    void arrowKeysAreTopSingularVectors() {
        auto experts = randomExperts(3, t5_.config, 19);
        auto r = makeRouter(*t5_.model, experts,
                            {.method = "arrow", .top_k = 1, .record_trace = true, .record_scores = true});
        torch::InferenceMode guard;
        torch::Tensor ids = torch::tensor(kInput).unsqueeze(0);
        t5_.model->encode(ids, torch::ones_like(ids));
        const std::string site = "encoder.block.0.layer.1.DenseReluDense.wi_0";
        torch::Tensor u = t5_.model->encoder->blocks[0]->layers[1]->layer_norm->forward(
            t5_.model->encoder->blocks[0]->layers[0]->forward(
                t5_.model->shared->forward(ids), torch::Tensor(), t5_.model->encoder->positionBias(0, 13, 13),
                nullptr))[0];
        std::vector<torch::Tensor> keys;
        for (const auto& e : experts) {
            auto [U, S, Vh] = torch::linalg_svd(torch::mm(e.modules.at(site).B, e.modules.at(site).A), false);
            keys.push_back(Vh[0]);
        }
        torch::Tensor expected = torch::mm(u, torch::stack(keys).t()).abs();
        torch::Tensor got = torch::tensor(r->trace().find(site)->scores).view({-1, 3});
        QVERIFY(maxDiff(got, expected) < 1e-4);
    }

    void retrievalPicksTheExpertWithTheNearestExample() {
        auto experts = randomExperts(3, t5_.config, 23);
        ExpertExamples ex;
        ex.inputs = {{{40, 41, 42, 1}, {43, 44, 1}}, {kInput, {50, 51, 1}}, {{60, 61, 62, 63, 1}}};
        ex.targets = {{{8, 1}, {9, 1}}, {{8, 1}, {9, 1}}, {{8, 1}}};
        torch::Tensor retrieved, single;
        {
            auto r = makeRouter(*t5_.model, experts, {.method = "retrieval", .record_trace = true}, &ex);
            r->beginBatch({kInput});
            retrieved = logits(*t5_.model);
            QCOMPARE(r->trace().sites.front().experts.front(), 1);
        }
        single = logitsUnder(experts, {.method = "single", .expert = "expert1"});
        QVERIFY(maxDiff(retrieved, single) < 1e-5);
    }

    // Average-activation keys are the mean layer input over an expert's examples: with one example, the
    // token mean of that example's input at the layer.
    void averageActivationKeys() {
        auto experts = randomExperts(2, t5_.config, 29);
        ExpertExamples ex;
        ex.inputs = {{kInput}, {{44, 45, 46, 1}}};
        ex.targets = {{{8, 9, 1}}, {{10, 1}}};
        auto r = makeRouter(
            *t5_.model, experts,
            {.method = "average-activation", .top_k = 2, .record_trace = true, .record_scores = true}, &ex);
        torch::InferenceMode guard;
        const std::string site = "encoder.block.0.layer.0.SelfAttention.q";
        auto inputAt = [&](const std::vector<int64_t>& ids) {
            torch::Tensor t = torch::tensor(ids).unsqueeze(0);
            return t5_.model->encoder->blocks[0]->layers[0]->layer_norm->forward(
                t5_.model->shared->forward(t))[0];
        };
        torch::Tensor keys =
            torch::stack({inputAt(ex.inputs[0][0]).mean(0), inputAt(ex.inputs[1][0]).mean(0)});
        torch::Tensor ids = torch::tensor(kInput).unsqueeze(0);
        t5_.model->encode(ids, torch::ones_like(ids));
        torch::Tensor u = inputAt(kInput);
        torch::Tensor expected =
            torch::mm(standardizeDouble(u), standardizeDouble(keys).t()) / std::sqrt(double(u.size(1)));
        torch::Tensor got = torch::tensor(r->trace().find(site)->scores).view({-1, 2}).to(torch::kDouble);
        QVERIFY(maxDiff(got, expected) < 1e-4);
    }

    // Pinning an expert on every input and output token is routing to it alone: `single`, whatever the
    // method and k; the trace still lists the method's other choices, with weight 0.
    void pinningEveryTokenEqualsSingle_data() {
        QTest::addColumn<QString>("method");
        QTest::addColumn<int>("k");
        for (int k : {1, 2, 3}) QTest::addRow("phatgoose k=%d", k) << "phatgoose" << k;
        QTest::newRow("arrow k=2") << "arrow" << 2;
    }
    void pinningEveryTokenEqualsSingle() {
        QFETCH(QString, method);
        QFETCH(int, k);
        auto experts = randomExperts(4, t5_.config, 41);
        const torch::Tensor single = logitsUnder(experts, {.method = "single", .expert = "expert2"});
        RoutingSpec spec{.method = method.toStdString(), .top_k = k, .record_trace = true};
        spec.pin = {.expert = "expert2", .output_tokens = true};
        auto router = makeRouter(*t5_.model, experts, spec);
        const torch::Tensor pinned = logits(*t5_.model);
        QVERIFY2(maxDiff(pinned, single) < 1e-5, qPrintable(QString("%1").arg(maxDiff(pinned, single))));
        for (const SiteRouting& s : router->trace().sites)
            for (int64_t t = 0; t < s.tokens; ++t) {
                QCOMPARE(s.experts[size_t(t * s.k)], 2);
                QCOMPARE(s.weights[size_t(t * s.k)], 1.0f);
                for (int64_t j = 1; j < s.k; ++j) {
                    QCOMPARE(s.weights[size_t(t * s.k + j)], 0.0f);
                    QVERIFY(s.experts[size_t(t * s.k + j)] != 2);
                }
            }
    }

    // A pinned span of input tokens: those rows go to the pinned expert; the first layer's other rows (which
    // no pinned token has influenced yet) and the decoder's first self-attention are routed as without a pin.
    void pinnedSpanChangesOnlyItsTokens() {
        auto experts = randomExperts(4, t5_.config, 43);
        RoutingSpec spec{.method = "phatgoose", .top_k = 2, .record_trace = true};
        auto plain = makeRouter(*t5_.model, experts, spec);
        const torch::Tensor before = logits(*t5_.model);
        const RoutingTrace unpinned = plain->trace();
        plain.reset();
        spec.pin = {.expert = "expert3", .first = 3, .last = 6};
        auto router = makeRouter(*t5_.model, experts, spec);
        QVERIFY(maxDiff(logits(*t5_.model), before) > 1e-4);
        for (const std::string site :
             {"encoder.block.0.layer.0.SelfAttention.q", "decoder.block.0.layer.0.SelfAttention.q"}) {
            const SiteRouting& got = *router->trace().find(site);
            const SiteRouting& was = *unpinned.find(site);
            for (int64_t t = 0; t < got.tokens; ++t) {
                const bool in_span = !got.decoder_tokens && t >= 3 && t <= 6;
                for (int64_t j = 0; j < 2; ++j) {
                    const size_t i = size_t(t * 2 + j);
                    if (!in_span) {
                        QCOMPARE(got.experts[i], was.experts[i]);
                        QCOMPARE(got.weights[i], was.weights[i]);
                    }
                }
                if (in_span) QCOMPARE(got.experts[size_t(t * 2)], 3);
                if (in_span) QCOMPARE(got.weights[size_t(t * 2)], 1.0f);
            }
        }
    }

    void traceCoversEveryTokenAndModule() {
        auto experts = randomExperts(4, t5_.config, 31);
        auto r = makeRouter(*t5_.model, experts, {.method = "phatgoose", .top_k = 2, .record_trace = true});
        auto out = generate(*t5_.model, {kInput}, {.max_new_tokens = 6});
        const int64_t steps = int64_t(out[0].ids.size());
        QCOMPARE(r->trace().sites.size(), t5LinearSites(t5_.config).size());
        for (const SiteRouting& s : r->trace().sites) {
            const bool cross_kv = s.kind == "EncDecAttention.k" || s.kind == "EncDecAttention.v";
            QCOMPARE(s.tokens, s.decoder_tokens ? steps : int64_t(kInput.size()));
            QCOMPARE(s.decoder_tokens, s.site.rfind("decoder", 0) == 0 && !cross_kv);
            QCOMPARE(int64_t(s.experts.size()), s.tokens * 2);
        }
        RoutingTrace back = RoutingTrace::fromJson(r->trace().toJson());
        QCOMPARE(back.sites.size(), r->trace().sites.size());
        QCOMPARE(back.sites[3].weights, r->trace().sites[3].weights);
    }

    void routerDetachesOnDestruction() {
        torch::Tensor before = logits(*t5_.model);
        { auto r = makeRouter(*t5_.model, randomExperts(2, t5_.config), {.method = "phatgoose"}); }
        QVERIFY(maxDiff(before, logits(*t5_.model)) == 0.0);
    }

    void badSpecs() {
        auto experts = randomExperts(2, t5_.config);
        expectError(experts, {.method = "phatgoose", .top_k = 3},
                    "top-k must be between 1 and the number of experts (2)");
        expectError(experts, {.method = "phatgoose", .top_k = 0}, "top-k");
        expectError(experts, {.method = "teleport"}, "unknown routing method 'teleport'");
        expectError(experts, {.method = "single", .expert = "nobody"}, "no expert named 'nobody'");
        expectError(experts, {.method = "retrieval"}, "needs each expert's training examples");
        expectError({}, {.method = "merge"}, "needs at least one expert");
        auto ungated = experts;
        for (auto& e : ungated)
            for (auto& [site, m] : e.modules) m.gate = torch::Tensor();
        expectError(ungated, {.method = "phatgoose"}, "none of the 2 experts has one");
        const TokenPin pin{.expert = "expert1"};
        expectError(experts, {.method = "single", .expert = "expert0", .pin = pin},
                    "applies to the token-wise routing methods, not to 'single'");
        expectError(experts, {.method = "phatgoose", .pin = {.expert = "nobody"}},
                    "cannot pin expert 'nobody': the routed library has expert0, expert1");
        expectError(experts, {.method = "phatgoose", .pin = {.expert = "expert1", .first = 5, .last = 2}},
                    "range 5-2 is empty");
        auto half_gated = experts;
        for (auto& [site, m] : half_gated[1].modules) m.gate = torch::Tensor();
        expectError(half_gated, {.method = "phatgoose", .pin = pin},
                    "cannot pin expert 'expert1' at encoder");
    }

    // PEFT adapters from the independent reference: loading and applying them reproduces Hugging Face + PEFT.
    void peftReferenceAdapters_data() {
        QTest::addColumn<QString>("name");
        for (const auto& n : phatgoose::testing::referenceCaseNames())
            QTest::newRow(n.c_str()) << QString::fromStdString(n);
    }
    void peftReferenceAdapters() {
        QFETCH(QString, name);
        auto ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        PretrainedT5 base = loadPretrainedT5(ref.dir / "model", {.load_tokenizer = false});
        std::vector<LoraExpert> experts{loadLoraExpert(ref.dir / "lora", base.config)};
        auto r = makeRouter(*base.model, experts, {.method = "single", .expert = experts[0].name});
        torch::InferenceMode guard;
        torch::Tensor ids = torch::tensor(ref.input_ids).unsqueeze(0), mask = torch::ones_like(ids);
        torch::Tensor enc = base.model->encode(ids, mask);
        torch::Tensor got =
            base.model->decode(torch::tensor(ref.decoder_input_ids).unsqueeze(0), enc, mask)[0];
        QVERIFY(maxDiff(enc[0], torch::tensor(ref.lora.encoder_last_hidden_state).view(enc[0].sizes())) <
                1e-4);
        QVERIFY(maxDiff(got, torch::tensor(ref.lora.logits).view(got.sizes())) < 1e-4);
        auto greedy = generate(*base.model, {ref.input_ids}, {.max_new_tokens = ref.max_new_tokens});
        QCOMPARE(greedy[0].ids, ref.lora.greedy_ids);
    }
};

QTEST_GUILESS_MAIN(RoutingTest)
#include "test_routing.moc"
