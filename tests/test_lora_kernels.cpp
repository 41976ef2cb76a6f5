// The fused gather-multiply-scatter kernels that apply one LoRA expert to its routed tokens, both
// implementations and every stored dtype (F32, BF16, F16), against the same products computed by ATen on
// the factors widened to float32: ranks and widths that are and are not multiples of the 4-row and 8-lane
// blocks, row counts around the 2-row blocks, and rows that share a token.
#include <QtTest>

#include <torch/torch.h>

#include "routing/lora_kernels.h"

using namespace phatgoose;

namespace {

struct Case {
    torch::Tensor x, A, B, out, token, weight;  // [T, d_in], [r, d_in], [d_out, r], [T, d_out], [rows]
};

FactorType factorType(torch::ScalarType t) {
    return t == torch::kBFloat16 ? FactorType::BF16 : t == torch::kHalf ? FactorType::F16 : FactorType::F32;
}

Factor factor(const torch::Tensor& t) {
    return {t.data_ptr(), factorType(t.scalar_type())};
}

Case makeCase(int64_t tokens, int64_t d_in, int64_t r, int64_t d_out, int64_t rows, bool shared_tokens,
              torch::ScalarType dtype = torch::kFloat) {
    torch::manual_seed(rows * 1000 + r);
    Case c;
    c.x = torch::randn({tokens, d_in});
    c.A = (torch::randn({r, d_in}) / std::sqrt(double(d_in))).to(dtype);
    c.B = (torch::randn({d_out, r}) / std::sqrt(double(r))).to(dtype);
    c.out = torch::randn({tokens, d_out});
    // Distinct tokens in shuffled order, or every token taken twice in a row (two experts of one token
    // in the same block) when shared.
    c.token = shared_tokens ? torch::arange(rows).div(2, "floor") % tokens
                            : torch::randperm(tokens).narrow(0, 0, rows);
    c.weight = torch::rand({rows});
    return c;
}

}  // namespace

class LoraKernelsTest : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void matchAten_data() {
        QTest::addColumn<int>("isa");
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("d_in");
        QTest::addColumn<int>("rank");
        QTest::addColumn<int>("d_out");
        QTest::addColumn<int>("rows");
        QTest::addColumn<bool>("shared");
        std::vector<LoraIsa> isas = {LoraIsa::Portable};
        if (bestLoraIsa() == LoraIsa::Avx2) isas.push_back(LoraIsa::Avx2);
        struct Shape {
            int d_in, rank, d_out;
        };
        const Shape shapes[] = {{512, 16, 512}, {512, 16, 2048}, {2048, 16, 512}, {32, 3, 24},
                                {33, 1, 7},     {40, 23, 70},    {64, 40, 17},    {48, 32, 70}};
        const std::pair<torch::ScalarType, const char*> dtypes[] = {
            {torch::kFloat, "F32"}, {torch::kBFloat16, "BF16"}, {torch::kHalf, "F16"}};
        for (LoraIsa isa : isas)
            for (auto [dtype, dtype_name] : dtypes)
                for (const Shape& s : shapes)
                    for (int rows : {1, 3, 4, 9, 37})
                        for (bool shared : {false, true}) {
                            if (shared && rows < 2) continue;
                            QTest::addRow("%s %s %dx%dx%d, %d rows%s", loraIsaName(isa), dtype_name, s.d_in,
                                          s.rank, s.d_out, rows, shared ? ", shared tokens" : "")
                                << int(isa) << int(dtype) << s.d_in << s.rank << s.d_out << rows << shared;
                        }
    }
    void matchAten() {
        QFETCH(int, isa);
        QFETCH(int, dtype);
        QFETCH(int, d_in);
        QFETCH(int, rank);
        QFETCH(int, d_out);
        QFETCH(int, rows);
        QFETCH(bool, shared);
        Case c = makeCase(40, d_in, rank, d_out, rows, shared, torch::ScalarType(dtype));
        const torch::Tensor A32 = c.A.to(torch::kFloat), B32 = c.B.to(torch::kFloat);
        const RoutedRows routed{c.token.data_ptr<int64_t>(), c.weight.data_ptr<float>(), rows};

        torch::Tensor h = torch::full({rows, rank}, std::nanf(""));  // every element must be written
        loraDown(c.x.data_ptr<float>(), d_in, routed, factor(c.A), rank, h.data_ptr<float>(), LoraIsa(isa));
        const torch::Tensor h_expected = c.x.index_select(0, c.token).mm(A32.t()) * c.weight.unsqueeze(1);
        QVERIFY2(torch::allclose(h, h_expected, 1e-5, 1e-5),
                 qPrintable(QString("down differs by %1").arg((h - h_expected).abs().max().item<double>())));

        torch::Tensor out = c.out.clone();
        loraUpAdd(out.data_ptr<float>(), d_out, routed, h.data_ptr<float>(), factor(c.B), rank, LoraIsa(isa));
        const torch::Tensor out_expected = c.out.index_add(0, c.token, h_expected.mm(B32.t()));
        QVERIFY2(
            torch::allclose(out, out_expected, 1e-5, 1e-5),
            qPrintable(QString("up differs by %1").arg((out - out_expected).abs().max().item<double>())));
    }

    // The up product in two column blocks of a wider output (out + c0, B from row c0, the full stride), as
    // two threads run it, equals the whole product.
    void columnBlocksEqualTheWholeProduct() {
        for (LoraIsa isa : {LoraIsa::Portable, bestLoraIsa()})
            for (auto dtype : {torch::kFloat, torch::kBFloat16})
                for (int rows : {1, 9}) {
                    Case c = makeCase(12, 40, 16, 70, rows, false, dtype);
                    const RoutedRows routed{c.token.data_ptr<int64_t>(), c.weight.data_ptr<float>(), rows};
                    torch::Tensor h = torch::randn({rows, 16});
                    torch::Tensor whole = c.out.clone(), blocks = c.out.clone();
                    loraUpAdd(whole.data_ptr<float>(), 70, routed, h.data_ptr<float>(), factor(c.B), 16, isa);
                    const int64_t split = 37;
                    loraUpAdd(blocks.data_ptr<float>(), split, routed, h.data_ptr<float>(), factor(c.B), 16,
                              isa, 70);
                    loraUpAdd(blocks.data_ptr<float>() + split, 70 - split, routed, h.data_ptr<float>(),
                              factorRows(factor(c.B), split, 16), 16, isa, 70);
                    QVERIFY(torch::allclose(whole, blocks, 1e-6, 1e-6));
                }
    }

    // Rows never written by any routed token keep their exact bytes: the tails store nothing past a row's
    // end.
    void untouchedRowsKeepTheirValues() {
        for (LoraIsa isa : {LoraIsa::Portable, bestLoraIsa()}) {
            Case c = makeCase(10, 33, 5, 21, 3, false);
            torch::Tensor out = c.out.clone();
            torch::Tensor h = torch::empty({3, 5});
            const RoutedRows routed{c.token.data_ptr<int64_t>(), c.weight.data_ptr<float>(), 3};
            loraDown(c.x.data_ptr<float>(), 33, routed, factor(c.A), 5, h.data_ptr<float>(), isa);
            loraUpAdd(out.data_ptr<float>(), 21, routed, h.data_ptr<float>(), factor(c.B), 5, isa);
            torch::Tensor touched = torch::zeros({10}, torch::kBool).index_fill(0, c.token, true);
            for (int64_t t = 0; t < 10; ++t)
                QCOMPARE(torch::equal(out[t], c.out[t]), !touched[t].item<bool>());
        }
    }
};

QTEST_GUILESS_MAIN(LoraKernelsTest)
#include "test_lora_kernels.moc"
