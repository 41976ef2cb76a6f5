// The one-pass kernels between the forward pass's products (RMS norm, feed-forward activations, bias plus
// softmax), both implementations, against LibTorch's own ops computing the same formulas. Odd widths that
// are not multiples of the eight lanes, rows on both sides of the two-thread split, extreme inputs (the
// vector exp's clamps, erf's tails, the mask's lowest float).
#include <QtTest>

#include <torch/torch.h>

#include <limits>

#include "model/pointwise_kernels.h"

using namespace phatgoose;

namespace {

std::vector<KernelIsa> isas() {
    std::vector<KernelIsa> out = {KernelIsa::Portable};
    if (bestKernelIsa() == KernelIsa::Avx2) out.push_back(KernelIsa::Avx2);
    return out;
}

const char* isaName(KernelIsa isa) {
    return isa == KernelIsa::Avx2 ? "avx2" : "portable";
}

QString largestDifference(const torch::Tensor& a, const torch::Tensor& b) {
    return QString("largest difference %1").arg((a - b).abs().max().item<double>());
}

}  // namespace

class PointwiseKernelsTest : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void rmsNormMatchesFormula_data() {
        QTest::addColumn<int>("isa");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("width");
        for (KernelIsa isa : isas())
            for (int rows : {1, 3, 130})
                for (int width : {1, 5, 8, 13, 512, 777})
                    QTest::addRow("%s %d rows x %d", isaName(isa), rows, width) << int(isa) << rows << width;
    }
    void rmsNormMatchesFormula() {
        QFETCH(int, isa);
        QFETCH(int, rows);
        QFETCH(int, width);
        torch::manual_seed(rows * 31 + width);
        const torch::Tensor x = torch::randn({2, rows, width}) * 3.0, w = torch::rand({width}) + 0.5;
        const double eps = 1e-6;
        const torch::Tensor expected = w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + eps));
        const torch::Tensor y = rmsNorm(x, w, eps, KernelIsa(isa));
        QCOMPARE(y.sizes(), x.sizes());
        QVERIFY2(torch::allclose(y, expected, 1e-5, 1e-6), qPrintable(largestDifference(y, expected)));
    }

    void activationsMatchLibTorch_data() {
        QTest::addColumn<int>("isa");
        QTest::addColumn<int>("activation");
        QTest::addColumn<bool>("gated");
        QTest::addColumn<int>("count");
        const std::pair<FeedForwardActivation, const char*> kinds[] = {
            {FeedForwardActivation::Relu, "relu"},
            {FeedForwardActivation::Gelu, "gelu"},
            {FeedForwardActivation::GeluTanh, "gelu-tanh"}};
        for (KernelIsa isa : isas())
            for (auto [kind, name] : kinds)
                for (bool gated : {false, true})
                    for (int count : {1, 7, 9, 1000, 70001})
                        QTest::addRow("%s %s%s %d", isaName(isa), gated ? "gated " : "", name, count)
                            << int(isa) << int(kind) << gated << count;
    }
    void activationsMatchLibTorch() {
        QFETCH(int, isa);
        QFETCH(int, activation);
        QFETCH(bool, gated);
        QFETCH(int, count);
        torch::manual_seed(count + activation);
        torch::Tensor a = torch::randn({count}) * 4.0;
        // The tails: erf and tanh saturate, the vector exp clamps its argument.
        const float edges[] = {0.0f, -0.0f, 30.0f, -30.0f, 9.5f, -9.5f, 1e-8f, -1e-8f, 100.0f, -100.0f};
        for (int i = 0; i < std::min<int>(count, std::size(edges)); ++i) a[i] = edges[i];
        const torch::Tensor b = gated ? torch::randn({count}) : torch::Tensor();
        const auto kind = FeedForwardActivation(activation);
        torch::Tensor expected = kind == FeedForwardActivation::Relu   ? torch::relu(a)
                                 : kind == FeedForwardActivation::Gelu ? torch::gelu(a)
                                                                       : torch::gelu(a, "tanh");
        if (gated) expected = expected * b;
        torch::Tensor y = a.clone();
        activateInPlace(y, kind, b, KernelIsa(isa));
        QVERIFY2(torch::allclose(y, expected, 1e-5, 1e-6), qPrintable(largestDifference(y, expected)));
    }

    void biasSoftmaxMatchesLibTorch_data() {
        QTest::addColumn<int>("isa");
        QTest::addColumn<QString>("bias");
        QTest::addColumn<int>("k_len");
        for (KernelIsa isa : isas())
            for (QString bias : {"none", "position", "mask", "position+mask"})
                for (int k_len : {1, 6, 8, 13, 130})
                    QTest::newRow(qPrintable(QString("%1 %2 k=%3").arg(isaName(isa), bias).arg(k_len)))
                        << int(isa) << bias << k_len;
    }
    void biasSoftmaxMatchesLibTorch() {
        QFETCH(int, isa);
        QFETCH(QString, bias);
        QFETCH(int, k_len);
        torch::manual_seed(k_len);
        const int64_t batch = 2, heads = 3, q_len = 5;
        const torch::Tensor scores = torch::randn({batch, heads, q_len, k_len}) * 10.0;
        torch::Tensor b;  // the shapes the attention layers pass: position [1, h, q, k], mask [b, 1, 1, k]
        const torch::Tensor position = torch::randn({1, heads, q_len, k_len}) * 5.0;
        torch::Tensor mask = torch::zeros({batch, 1, 1, k_len});
        if (k_len > 1)
            mask[1].index_put_({0, 0, torch::indexing::Slice(k_len / 2)},
                               std::numeric_limits<float>::lowest());
        if (bias == "position") b = position;
        if (bias == "mask") b = mask;
        if (bias == "position+mask") b = position + mask;
        const torch::Tensor expected = torch::softmax(b.defined() ? scores + b : scores, -1);
        torch::Tensor y = scores.clone();
        biasSoftmaxInPlace(y, b, KernelIsa(isa));
        QVERIFY2(torch::allclose(y, expected, 1e-5, 1e-7), qPrintable(largestDifference(y, expected)));
        QVERIFY(torch::allclose(y.sum(-1), torch::ones({batch, heads, q_len}), 1e-5, 1e-5));
    }

    void refusesWhatItCannotRead() {
        torch::Tensor strided = torch::randn({4, 6}).t();
        QVERIFY_THROWS_EXCEPTION(std::exception, rmsNorm(strided, torch::ones({4}), 1e-6));
        QVERIFY_THROWS_EXCEPTION(std::exception, rmsNorm(torch::randn({2, 5}), torch::ones({4}), 1e-6));
        torch::Tensor doubles = torch::randn({3}, torch::kDouble);
        QVERIFY_THROWS_EXCEPTION(std::exception, activateInPlace(doubles, FeedForwardActivation::Relu));
        torch::Tensor a = torch::randn({3});
        QVERIFY_THROWS_EXCEPTION(std::exception,
                                 activateInPlace(a, FeedForwardActivation::Relu, torch::randn({4})));
        torch::Tensor three = torch::randn({2, 3, 4});
        QVERIFY_THROWS_EXCEPTION(std::exception, biasSoftmaxInPlace(three, torch::Tensor()));
    }
};

QTEST_GUILESS_MAIN(PointwiseKernelsTest)
#include "test_pointwise_kernels.moc"
