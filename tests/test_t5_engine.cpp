// The engine's internal consistency on random tiny models of both families: padding, the key/value cache,
// beam search, scoring, weight dtypes, sharding, and every bad input the loader can meet.
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include "error.h"
#include "fixtures/files.h"
#include "fixtures/tiny_t5.h"
#include "model/generation.h"
#include "model/scoring.h"
#include "model/t5_loader.h"
#include "model/token_batch.h"

using namespace phatgoose;
using phatgoose::testing::TinyT5Options;
using phatgoose::testing::writeTinyT5;
namespace fs = std::filesystem;

namespace {

double maxDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>();
}

const std::vector<std::vector<int64_t>> kInputs = {
    {5, 17, 33, 9, 41, 70, 12, 8, 99, 23, 4, 61, 1}, {7, 3, 1}, {44, 45, 46, 47, 48, 1}};

// Asserts that loading `dir` throws an Error whose message contains every fragment.
void expectLoadError(const fs::path& dir, const QStringList& fragments) {
    try {
        loadPretrainedT5(dir);
    } catch (const Error& e) {
        for (const QString& f : fragments)
            QVERIFY2(QString(e.what()).contains(f), qPrintable(QString("'%1' lacks '%2'").arg(e.what(), f)));
        QVERIFY2(!QString(e.what()).contains('\n'), "error messages are one line");
        return;
    }
    QFAIL("loading succeeded but should have failed");
}

}  // namespace

class T5EngineTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

    PretrainedT5 tiny(bool gated, const std::string& tag = "m") {
        fs::path dir = fs::path(tmp_.path().toStdString()) / (tag + (gated ? "-v11" : "-v10"));
        if (!fs::exists(dir / "config.json")) writeTinyT5(dir, {.gated = gated});
        return loadPretrainedT5(dir);
    }

private Q_SLOTS:
    void families_data() {
        QTest::addColumn<bool>("gated");
        QTest::newRow("v1.0 relu tied") << false;
        QTest::newRow("v1.1 gated-gelu untied") << true;
    }

    void paddedBatchEqualsSingleRows_data() { families_data(); }
    void paddedBatchEqualsSingleRows() {
        QFETCH(bool, gated);
        PretrainedT5 t5 = tiny(gated);
        torch::InferenceMode guard;
        TokenBatch batch = TokenBatch::fromRows(kInputs, 0);
        const std::vector<std::vector<int64_t>> dec = {{0, 5, 9, 13}, {0, 4}, {0, 8, 8}};
        TokenBatch dec_batch = TokenBatch::fromRows(dec, 0);
        torch::Tensor enc = t5.model->encode(batch.ids, batch.mask);
        torch::Tensor logits = t5.model->decode(dec_batch.ids, enc, batch.mask);
        for (size_t i = 0; i < kInputs.size(); ++i) {
            torch::Tensor ids = torch::tensor(kInputs[i]).unsqueeze(0);
            torch::Tensor one = t5.model->encode(ids, torch::ones_like(ids));
            const int64_t n = int64_t(kInputs[i].size()), m = int64_t(dec[i].size());
            QVERIFY(maxDiff(one[0], enc[int64_t(i)].narrow(0, 0, n)) < 1e-5);
            torch::Tensor one_logits =
                t5.model->decode(torch::tensor(dec[i]).unsqueeze(0), one, torch::ones_like(ids));
            QVERIFY(maxDiff(one_logits[0], logits[int64_t(i)].narrow(0, 0, m)) < 1e-5);
        }
    }

    void cachedEqualsUncached_data() { families_data(); }
    void cachedEqualsUncached() {
        QFETCH(bool, gated);
        PretrainedT5 t5 = tiny(gated);
        torch::InferenceMode guard;
        TokenBatch batch = TokenBatch::fromRows(kInputs, 0);
        torch::Tensor enc = t5.model->encode(batch.ids, batch.mask);
        // 40 steps cross the bucket boundaries and force the cache to grow past its first capacity.
        torch::Tensor dec = torch::randint(2, 100, {3, 40}, torch::kLong);
        torch::Tensor full = t5.model->decode(dec, enc, batch.mask);
        DecoderCache cache;
        std::vector<torch::Tensor> parts;
        parts.push_back(
            t5.model->decode(dec.narrow(1, 0, 3), enc, batch.mask, &cache));  // a multi-token prefix
        for (int64_t t = 3; t < 40; ++t)
            parts.push_back(t5.model->decode(dec.narrow(1, t, 1), enc, batch.mask, &cache));
        QCOMPARE(cache.length(), int64_t(40));
        QVERIFY(maxDiff(torch::cat(parts, 1), full) < 1e-5);
    }

    void greedyEqualsOneBeam_data() { families_data(); }
    void greedyEqualsOneBeam() {
        QFETCH(bool, gated);
        PretrainedT5 t5 = tiny(gated);
        GenerationOptions greedy_opt{.max_new_tokens = 25, .num_beams = 1};
        auto batched = generate(*t5.model, kInputs, greedy_opt);
        for (size_t i = 0; i < kInputs.size(); ++i) {
            // Beam search runs one example at a time, so this also checks batched greedy against single rows.
            auto beam = generate(*t5.model, {kInputs[i]}, {.max_new_tokens = 25, .num_beams = 1});
            QCOMPARE(batched[i].ids, beam[0].ids);
            QVERIFY(std::abs(batched[i].log_prob - beam[0].log_prob) < 1e-4);
            QVERIFY(int64_t(batched[i].ids.size()) <= 25);
        }
    }

    // Given the inputs' encoder output, generation decodes from it (greedy over the padded batch, beam search
    // per row) and gives what encoding inside generate() gives; an output of another shape is refused.
    void givenEncoderOutputIsUsed_data() { families_data(); }
    void givenEncoderOutputIsUsed() {
        QFETCH(bool, gated);
        PretrainedT5 t5 = tiny(gated);
        TokenBatch batch = TokenBatch::fromRows(kInputs, 0);
        torch::Tensor enc;
        {
            torch::InferenceMode guard;
            enc = t5.model->encode(batch.ids, batch.mask);
        }
        for (int64_t beams : {int64_t(1), int64_t(3)}) {
            GenerationOptions plain{.max_new_tokens = 10, .num_beams = beams};
            GenerationOptions given = plain;
            given.encoded = enc;
            auto expected = generate(*t5.model, kInputs, plain);
            auto got = generate(*t5.model, kInputs, given);
            for (size_t i = 0; i < kInputs.size(); ++i) {
                QCOMPARE(got[i].ids, expected[i].ids);
                QVERIFY(std::abs(got[i].log_prob - expected[i].log_prob) < 1e-4);
            }
            // A different encoder output changes the result: the given one is really what is decoded from.
            given.encoded = torch::zeros_like(enc);
            auto from_zeros = generate(*t5.model, kInputs, given);
            bool differs = false;
            for (size_t i = 0; i < kInputs.size(); ++i)
                differs = differs || from_zeros[i].log_prob != expected[i].log_prob;
            QVERIFY(differs);
        }
        GenerationOptions wrong{.max_new_tokens = 4};
        wrong.encoded = enc.narrow(1, 0, enc.size(1) - 1);
        QVERIFY_THROWS_EXCEPTION(std::exception, generate(*t5.model, kInputs, wrong));
    }

    // A beam's reported log-probability equals a teacher-forced re-scoring of its ids, and a wider beam never
    // ends with a worse score than the greedy path (the greedy path is among the candidates it keeps).
    void beamSearchIsConsistent_data() { families_data(); }
    void beamSearchIsConsistent() {
        QFETCH(bool, gated);
        PretrainedT5 t5 = tiny(gated);
        for (const auto& input : kInputs) {
            auto beams =
                generate(*t5.model, {input}, {.max_new_tokens = 12, .num_beams = 4, .length_penalty = 0.0});
            auto greedy =
                generate(*t5.model, {input}, {.max_new_tokens = 12, .num_beams = 1, .length_penalty = 0.0});
            auto rescored = scoreTargets(*t5.model, {input}, {beams[0].ids});
            QVERIFY(std::abs(rescored[0].sum - beams[0].log_prob) < 1e-3);
            QVERIFY(beams[0].score >= greedy[0].score - 1e-4);
        }
    }

    void scoringMatchesDirectComputation_data() { families_data(); }
    void scoringMatchesDirectComputation() {
        QFETCH(bool, gated);
        PretrainedT5 t5 = tiny(gated);
        const std::vector<std::vector<int64_t>> choices = {{8, 1}, {9, 10, 11, 1}, {40, 41, 1}};
        RankResult rank = rankChoices(*t5.model, kInputs[0], choices);
        torch::InferenceMode guard;
        torch::Tensor ids = torch::tensor(kInputs[0]).unsqueeze(0);
        torch::Tensor enc = t5.model->encode(ids, torch::ones_like(ids));
        double best = -1e30;
        int64_t best_i = -1;
        for (size_t c = 0; c < choices.size(); ++c) {
            std::vector<int64_t> dec{0};
            dec.insert(dec.end(), choices[c].begin(), choices[c].end() - 1);
            torch::Tensor logp = torch::log_softmax(
                t5.model->decode(torch::tensor(dec).unsqueeze(0), enc, torch::ones_like(ids))[0], -1);
            double sum = 0;
            for (size_t t = 0; t < choices[c].size(); ++t)
                sum += logp[int64_t(t)][choices[c][t]].item<double>();
            QVERIFY(std::abs(rank.scores[c].sum - sum) < 1e-4);
            QVERIFY(std::abs(rank.scores[c].mean - sum / double(choices[c].size())) < 1e-4);
            if (sum / double(choices[c].size()) > best)
                best = sum / double(choices[c].size()), best_i = int64_t(c);
        }
        QCOMPARE(rank.best, best_i);
    }

    void halfPrecisionWeightsLoad_data() {
        QTest::addColumn<int>("dtype");
        QTest::newRow("F16") << int(DType::F16);
        QTest::newRow("BF16") << int(DType::BF16);
    }
    void halfPrecisionWeightsLoad() {
        QFETCH(int, dtype);
        fs::path dir = fs::path(tmp_.path().toStdString()) / ("half" + std::to_string(dtype));
        writeTinyT5(dir, {.gated = true, .dtype = DType(dtype), .seed = 5});
        PretrainedT5 t5 = loadPretrainedT5(dir);
        QCOMPARE(QString::fromStdString(t5.weight_dtype), QString(dtype == int(DType::F16) ? "F16" : "BF16"));
        // Weight matrices stay as stored; layer norms and position biases are widened.
        const auto stored = dtype == int(DType::F16) ? torch::kHalf : torch::kBFloat16;
        QCOMPARE(t5.model->shared->weight.scalar_type(), stored);
        QCOMPARE(t5.model->encoder->blocks[0]->layers[1]->dense->wo->weight.scalar_type(), stored);
        QCOMPARE(t5.model->encoder->final_layer_norm->weight.scalar_type(), torch::kFloat);
        int64_t expected_bytes = 0;
        for (const auto& p : t5.model->parameters()) expected_bytes += p.numel() * p.element_size();
        QCOMPARE(t5.weight_bytes, expected_bytes);

        // The same values widened to float32 up front (what HF transformers does with torch_dtype=float32):
        // logits agree to accumulation order.
        PretrainedT5 wide = loadPretrainedT5(dir);
        for (auto& p : wide.model->parameters()) p.set_data(p.to(torch::kFloat));
        torch::InferenceMode guard;
        for (int64_t batch : {1, 3}) {  // one row: the streaming kernel; three: the tiled sgemm
            std::vector<std::vector<int64_t>> rows(size_t(batch), kInputs[1]);
            TokenBatch in = TokenBatch::fromRows(rows, 0);
            torch::Tensor dec = torch::tensor(std::vector<int64_t>{0, 5, 9}).unsqueeze(0).repeat({batch, 1});
            torch::Tensor a = t5.model->decode(dec, t5.model->encode(in.ids, in.mask), in.mask);
            torch::Tensor b = wide.model->decode(dec, wide.model->encode(in.ids, in.mask), in.mask);
            QVERIFY2(torch::allclose(a, b, 1e-4, 1e-4),
                     qPrintable(QString("differs by %1").arg((a - b).abs().max().item<double>())));
        }
        auto out = generate(*t5.model, {kInputs[1]}, {.max_new_tokens = 5});
        QVERIFY(!out[0].ids.empty());
    }

    void shardedCheckpointEqualsSingleFile() {
        fs::path one = fs::path(tmp_.path().toStdString()) / "single";
        fs::path many = fs::path(tmp_.path().toStdString()) / "sharded";
        writeTinyT5(one, {.gated = true, .seed = 3});
        writeTinyT5(many, {.gated = true, .shards = 3, .seed = 3});
        PretrainedT5 a = loadPretrainedT5(one), b = loadPretrainedT5(many);
        for (const auto& p : a.model->named_parameters())
            QVERIFY(torch::equal(p.value(), *b.model->named_parameters().find(p.key())));
    }

    void vocabularyPaddingRows() {
        // Checkpoints may have more embedding rows than the tokenizer has pieces (the v1.1 reference does).
        fs::path dir = fs::path(tmp_.path().toStdString()) / "padded-vocab";
        writeTinyT5(dir, {.gated = true, .extra_vocab_rows = 8});
        PretrainedT5 t5 = loadPretrainedT5(dir);
        QCOMPARE(t5.config.vocab_size, t5.tokenizer->size() + 8);
    }

    void badInput_data() {
        QTest::addColumn<QString>("damage");
        QTest::addColumn<QStringList>("fragments");
        QTest::newRow("missing config") << "rm config.json" << QStringList{"config.json", "cannot open"};
        QTest::newRow("malformed config") << "config {oops" << QStringList{"config.json", "malformed JSON"};
        QTest::newRow("config missing key")
            << "config {\"model_type\":\"t5\",\"d_model\":32}" << QStringList{"config.json", "vocab_size"};
        QTest::newRow("config wrong type")
            << "config {\"vocab_size\":\"x\"}" << QStringList{"config.json", "vocab_size"};
        QTest::newRow("truncated weights") << "truncate" << QStringList{"model.safetensors"};
        QTest::newRow("missing weights") << "rm model.safetensors" << QStringList{"no model.safetensors"};
        QTest::newRow("missing spiece") << "rm spiece.model" << QStringList{"spiece.model"};
        QTest::newRow("shape disagrees with config")
            << "config-dff 40" << QStringList{"model.safetensors", "DenseReluDense", "shape"};
        QTest::newRow("missing tensor") << "drop encoder.final_layer_norm.weight"
                                        << QStringList{"missing tensor", "encoder.final_layer_norm.weight"};
        QTest::newRow("unexpected tensor")
            << "add encoder.block.9.extra.weight"
            << QStringList{"unexpected tensor", "encoder.block.9.extra.weight"};
        QTest::newRow("integer dtype") << "int shared.weight" << QStringList{"shared.weight", "I32"};
        QTest::newRow("index escaping the folder")
            << "index ../evil.safetensors" << QStringList{"index.json", "../evil.safetensors"};
        QTest::newRow("pickle only") << "pickle" << QStringList{"pytorch_model.bin", "safetensors"};
    }
    void badInput() {
        QFETCH(QString, damage);
        QFETCH(QStringList, fragments);
        static int n = 0;
        fs::path dir = writeTinyT5(fs::path(tmp_.path().toStdString()) / ("bad" + std::to_string(n++)), {});
        const std::string d = damage.toStdString();
        const std::string arg = d.substr(d.find(' ') + 1);
        const T5Config config = phatgoose::testing::tinyConfig({});
        auto rewriteWeights = [&](auto edit) {
            SafetensorsFile file(dir / "model.safetensors");
            std::vector<std::string> bytes;
            std::vector<TensorToWrite> tensors;
            for (const TensorInfo& t : file.header().tensors) {
                bytes.emplace_back(t.end - t.begin, '\0');
                file.read(t, bytes.back().data());
                tensors.push_back({t.name, t.dtype, t.shape, bytes.back().data()});
            }
            edit(tensors);
            writeSafetensors(dir / "model.safetensors", tensors);
        };
        if (d.rfind("rm ", 0) == 0) fs::remove(dir / arg);
        if (d.rfind("config ", 0) == 0) phatgoose::testing::writeFileBytes(dir / "config.json", arg);
        if (d == "truncate") {
            std::string all = phatgoose::testing::readFileBytes(dir / "model.safetensors");
            phatgoose::testing::writeFileBytes(dir / "model.safetensors", all.substr(0, all.size() - 100));
        }
        if (d.rfind("config-dff ", 0) == 0) {
            T5Config c = config;
            c.d_ff = std::stoi(arg);
            phatgoose::testing::writeFileBytes(dir / "config.json", c.toJsonText());
        }
        if (d.rfind("drop ", 0) == 0)
            rewriteWeights([&](auto& ts) {
                ts.erase(std::remove_if(ts.begin(), ts.end(), [&](auto& t) { return t.name == arg; }),
                         ts.end());
            });
        static const float extra[4] = {1, 2, 3, 4};
        if (d.rfind("add ", 0) == 0)
            rewriteWeights([&](auto& ts) { ts.push_back({arg, DType::F32, {4}, extra}); });
        if (d.rfind("int ", 0) == 0)
            rewriteWeights([&](auto& ts) {
                for (auto& t : ts)
                    if (t.name == arg) t.dtype = DType::I32;
            });
        if (d.rfind("index ", 0) == 0) {
            fs::remove(dir / "model.safetensors");
            phatgoose::testing::writeFileBytes(dir / "model.safetensors.index.json",
                                               "{\"weight_map\": {\"shared.weight\": \"" + arg + "\"}}");
        }
        if (d == "pickle") {
            fs::remove(dir / "model.safetensors");
            phatgoose::testing::writeFileBytes(dir / "pytorch_model.bin", "PK");
        }
        expectLoadError(dir, fragments);
    }

    void badTokenIds_data() {
        QTest::addColumn<QList<qlonglong>>("ids");
        QTest::addColumn<QString>("fragment");
        QTest::newRow("empty") << QList<qlonglong>{} << "empty input";
        QTest::newRow("beyond vocabulary") << QList<qlonglong>{5, 100000, 1} << "outside the vocabulary";
        QTest::newRow("negative") << QList<qlonglong>{-3, 1} << "outside the vocabulary";
    }
    void badTokenIds() {
        QFETCH(QList<qlonglong>, ids);
        QFETCH(QString, fragment);
        PretrainedT5 t5 = tiny(false);
        std::vector<int64_t> row(ids.begin(), ids.end());
        try {
            generate(*t5.model, {row}, {});
            QFAIL("generation accepted bad ids");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(fragment), e.what());
        }
    }
};

QTEST_GUILESS_MAIN(T5EngineTest)
#include "test_t5_engine.moc"
