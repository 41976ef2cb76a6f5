// Products with weights kept as stored (BF16, F16): the streaming one- and two-row kernel and the tiled
// sgemm path, both implementations, against ATen's linear on the same weights widened to float32. Odd
// shapes: widths that are not multiples of the 8-lane vectors or of the 4-output blocks, row counts on
// both sides of the two paths, and more outputs than one tile.
#include <QtTest>

#include <torch/torch.h>

#include "error.h"
#include "model/compute_policy.h"
#include "model/packed_gemm.h"
#include "model/weight_kernels.h"

#include <mutex>
#include <set>
#include <thread>

using namespace phatgoose;

class WeightKernelsTest : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void matchAten_data() {
        QTest::addColumn<int>("isa");
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("d_in");
        QTest::addColumn<int>("d_out");
        std::vector<KernelIsa> isas = {KernelIsa::Portable};
        if (bestKernelIsa() == KernelIsa::Avx2) isas.push_back(KernelIsa::Avx2);
        const std::pair<torch::ScalarType, const char*> dtypes[] = {{torch::kBFloat16, "BF16"},
                                                                    {torch::kHalf, "F16"}};
        struct Shape {
            int d_in, d_out;
        };
        const Shape shapes[] = {{64, 64}, {37, 13}, {5, 3}, {256, 1031}, {2048, 300}, {1, 9}};
        for (KernelIsa isa : isas)
            for (auto [dtype, name] : dtypes)
                for (const Shape& s : shapes)
                    for (int rows : {1, 2, 3, 5, 130})
                        QTest::addRow("%s %s %d rows, %dx%d", isa == KernelIsa::Avx2 ? "avx2" : "portable",
                                      name, rows, s.d_in, s.d_out)
                            << int(isa) << int(dtype) << rows << s.d_in << s.d_out;
    }
    void matchAten() {
        QFETCH(int, isa);
        QFETCH(int, dtype);
        QFETCH(int, rows);
        QFETCH(int, d_in);
        QFETCH(int, d_out);
        torch::manual_seed(rows * 7 + d_in);
        const torch::Tensor w =
            (torch::randn({d_out, d_in}) / std::sqrt(double(d_in))).to(torch::ScalarType(dtype));
        const torch::Tensor x = torch::randn({rows, d_in});
        const torch::Tensor expected = torch::linear(x, w.to(torch::kFloat));
        const double tol = 1e-5 * std::sqrt(double(d_in));
        for (bool tiled : {false, true}) {
            const torch::Tensor y =
                tiled ? halfTiledProduct(x, w, KernelIsa(isa)) : halfRowsProduct(x, w, KernelIsa(isa));
            QCOMPARE(y.sizes(), expected.sizes());
            QVERIFY2(torch::allclose(y, expected, tol, tol),
                     qPrintable(QString("%1 differs by %2")
                                    .arg(tiled ? "tiled" : "rows")
                                    .arg((y - expected).abs().max().item<double>())));
        }
        // The dispatcher picks one of them by row count, and keeps the leading dimensions.
        const torch::Tensor y3 = linearProduct(x.view({1, rows, d_in}), w);
        QCOMPARE(y3.sizes(), (std::vector<int64_t>{1, rows, d_out}));
        QVERIFY(torch::allclose(y3[0], expected, tol, tol));
    }

    // The AVX-512 packed product (model/packed_gemm.h): widths on both sides of its 256-column blocks and
    // 32-column panels, more outputs than one 512-column weight block, row counts around its 8-row blocks.
    void packedProductMatchesAten_data() {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("d_in");
        QTest::addColumn<int>("d_out");
        const std::pair<torch::ScalarType, const char*> dtypes[] = {
            {torch::kFloat, "F32"}, {torch::kBFloat16, "BF16"}, {torch::kHalf, "F16"}};
        const std::pair<int, int> shapes[] = {{64, 64},  {37, 13},  {1, 9},     {300, 1031},
                                              {256, 32}, {513, 70}, {2048, 600}};
        for (auto [dtype, name] : dtypes)
            for (auto [d_in, d_out] : shapes)
                for (int rows : {1, 3, 8, 9, 130, 257})
                    QTest::addRow("%s %d rows, %dx%d", name, rows, d_in, d_out)
                        << int(dtype) << rows << d_in << d_out;
    }
    void packedProductMatchesAten() {
        QFETCH(int, dtype);
        QFETCH(int, rows);
        QFETCH(int, d_in);
        QFETCH(int, d_out);
        torch::manual_seed(rows * 11 + d_out);
        const torch::Tensor w =
            (torch::randn({d_out, d_in}) / std::sqrt(double(d_in))).to(torch::ScalarType(dtype));
        const torch::Tensor x = torch::randn({rows, d_in});
        if (!packedGemmAvailable()) {  // this CPU has no AVX-512: the kernel refuses, callers keep BLAS
            QVERIFY_THROWS_EXCEPTION(Error, packedProduct(x, w));
            return;
        }
        const torch::Tensor expected = torch::linear(x, w.to(torch::kFloat));
        const torch::Tensor y = packedProduct(x, w);
        QCOMPARE(y.sizes(), expected.sizes());
        const double tol = 1e-5 * std::sqrt(double(d_in));
        QVERIFY2(torch::allclose(y, expected, tol, tol),
                 qPrintable(QString("differs by %1").arg((y - expected).abs().max().item<double>())));
        // Every output written (no stale scratch or unwritten column), in two threads' halves or one.
        QVERIFY(torch::isfinite(y).all().item<bool>());
    }

    void widenedRowsAreExact() {
        for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
            const torch::Tensor w = torch::randn({19, 21}).to(dtype);
            std::vector<float> out(5 * 21);
            widenRows(w, 7, 5, out.data());
            QVERIFY(torch::equal(torch::from_blob(out.data(), {5, 21}), w.narrow(0, 7, 5).to(torch::kFloat)));
        }
    }

    // Gradients reach the input through a two-byte weight (gate training over a BF16 model).
    void gradientsFlowToTheInput() {
        const torch::Tensor w = torch::randn({6, 4}).to(torch::kBFloat16);
        const torch::Tensor x = torch::randn({3, 4}, torch::requires_grad());
        linearProduct(x, w).sum().backward();
        QVERIFY(torch::allclose(x.grad(), w.to(torch::kFloat).sum(0).expand({3, 4}), 1e-6, 1e-6));
    }

    // The compute policy: LibTorch on the calling thread, BLAS and the engine's kernels on `threads`; with
    // one thread, runOnTwoThreads runs everything on the caller.
    void computePolicySetsEveryPool() {
        applyComputePolicy(1);
        ComputeThreads t = computeThreads();
        QCOMPARE(t.aten, 1);
        QCOMPARE(t.kernels, 1);
        std::set<std::thread::id> seen;
        std::mutex lock;
        runOnTwoThreads(1 << 20, 1, [&](int64_t, int64_t) {
            std::lock_guard<std::mutex> guard(lock);
            seen.insert(std::this_thread::get_id());
        });
        QCOMPARE(seen.size(), size_t(1));
        QCOMPARE(*seen.begin(), std::this_thread::get_id());
        if (std::thread::hardware_concurrency() >= 2) {
            applyComputePolicy(2);
            t = computeThreads();
            QCOMPARE(t.aten, 1);
            QCOMPARE(t.kernels, 2);
            if (t.blas != 0) QCOMPARE(t.blas, 2);  // 0: the BLAS is not OpenBLAS
            seen.clear();
            runOnTwoThreads(1 << 20, 1, [&](int64_t, int64_t) {
                std::lock_guard<std::mutex> guard(lock);
                seen.insert(std::this_thread::get_id());
            });
            QCOMPARE(seen.size(), size_t(2));
        }
    }

    void refusesMismatchedShapes() {
        const torch::Tensor w = torch::randn({6, 4}).to(torch::kBFloat16);
        QVERIFY_THROWS_EXCEPTION(std::exception, halfRowsProduct(torch::randn({2, 5}), w));
    }
};

QTEST_GUILESS_MAIN(WeightKernelsTest)
#include "test_weight_kernels.moc"
