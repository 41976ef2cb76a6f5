// Parity with an independent implementation (Hugging Face transformers): the shared/reference cases.
#include <QtTest>

#include "model/generation.h"
#include "model/t5_loader.h"
#include "reference_case.h"

using namespace phatgoose;
using phatgoose::testing::ReferenceCase;

namespace {

double maxAbsDiff(const torch::Tensor& ours, const std::vector<float>& theirs) {
    torch::Tensor ref = torch::tensor(theirs).view(ours.sizes());
    return (ours.to(torch::kFloat) - ref).abs().max().item<double>();
}

torch::Tensor row(const std::vector<int64_t>& ids) {
    return torch::tensor(ids, torch::kLong).unsqueeze(0);
}

}  // namespace

class T5ReferenceTest : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init() { torch::manual_seed(0); }

    void cases_data() {
        QTest::addColumn<QString>("name");
        for (const auto& n : phatgoose::testing::referenceCaseNames())
            QTest::newRow(n.c_str()) << QString::fromStdString(n);
    }

    void encoderAndLogitsMatch_data() { cases_data(); }
    void encoderAndLogitsMatch() {
        QFETCH(QString, name);
        ReferenceCase ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        PretrainedT5 t5 = loadPretrainedT5(ref.dir / "model", {.load_tokenizer = false});
        torch::InferenceMode guard;
        torch::Tensor ids = row(ref.input_ids), mask = torch::ones_like(ids);
        torch::Tensor enc = t5.model->encode(ids, mask).squeeze(0);
        QVERIFY2(maxAbsDiff(enc, ref.base.encoder_last_hidden_state) < 1e-4, "encoder states differ");
        torch::Tensor logits =
            t5.model->decode(row(ref.decoder_input_ids), enc.unsqueeze(0), mask).squeeze(0);
        const double diff = maxAbsDiff(logits, ref.base.logits);
        QVERIFY2(diff < 1e-4, qPrintable(QString("logits differ by %1").arg(diff)));
    }

    // The cached decoder, one token at a time, gives the teacher-forced logits of the reference.
    void cachedDecodingMatches_data() { cases_data(); }
    void cachedDecodingMatches() {
        QFETCH(QString, name);
        ReferenceCase ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        PretrainedT5 t5 = loadPretrainedT5(ref.dir / "model", {.load_tokenizer = false});
        torch::InferenceMode guard;
        torch::Tensor ids = row(ref.input_ids), mask = torch::ones_like(ids);
        torch::Tensor enc = t5.model->encode(ids, mask);
        DecoderCache cache;
        std::vector<torch::Tensor> steps;
        for (int64_t token : ref.decoder_input_ids)
            steps.push_back(t5.model->decode(row({token}), enc, mask, &cache));
        torch::Tensor logits = torch::cat(steps, 1).squeeze(0);
        QVERIFY(maxAbsDiff(logits, ref.base.logits) < 1e-4);
    }

    void greedyMatches_data() { cases_data(); }
    void greedyMatches() {
        QFETCH(QString, name);
        ReferenceCase ref = phatgoose::testing::loadReferenceCase(name.toStdString());
        PretrainedT5 t5 = loadPretrainedT5(ref.dir / "model", {.load_tokenizer = false});
        GenerationOptions opt;
        opt.max_new_tokens = ref.max_new_tokens;
        auto out = generate(*t5.model, {ref.input_ids}, opt);
        QCOMPARE(out.at(0).ids, ref.base.greedy_ids);
    }
};

QTEST_GUILESS_MAIN(T5ReferenceTest)
#include "test_t5_reference.moc"
