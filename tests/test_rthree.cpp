// The expert libraries researchers download: the authors' r-three best.pt (imported into PEFT folders and
// exported back), PEFT adapters saved as adapter_model.bin, and models named by hub id in the local
// Hugging Face cache. Files are made here by the project's own writer of PyTorch's zip format, in the
// authors' exact key layout.
#include <QTemporaryDir>
#include <QtTest>
#include <cstdlib>

#include "error.h"
#include "experts/expert_library.h"
#include "experts/rthree_library.h"
#include "fixtures/cli_run.h"
#include "fixtures/files.h"
#include "fixtures/tiny_t5.h"
#include "model/pytorch_checkpoint.h"
#include "model/t5_loader.h"
#include "routing/router.h"

using namespace phatgoose;
namespace fs = std::filesystem;
using phatgoose::testing::readFileBytes;
using phatgoose::testing::writeFileBytes;

namespace {

constexpr int64_t kRank = 16;

// One expert in the authors' layout: per module, layer1 = A^T [d_in, r], layer2 = B^T [r, d_out], and the
// router embedding [d_in]; random, with B far from zero so that every expert changes the output.
struct AuthorsExpert {
    std::map<std::string, torch::Tensor> layer1, layer2, gate;
};

std::vector<AuthorsExpert> randomAuthorsExperts(const T5Config& config, int count, uint64_t seed) {
    torch::manual_seed(seed);
    std::vector<AuthorsExpert> experts(static_cast<size_t>(count));
    for (AuthorsExpert& e : experts)
        for (const LinearSite& s : t5LinearSites(config)) {
            e.layer1[s.path] = torch::randn({s.d_in, kRank}) * 0.2;
            e.layer2[s.path] = torch::randn({kRank, s.d_out}) * 0.2;
            e.gate[s.path] = torch::randn({s.d_in});
        }
    return experts;
}

// Writes best.pt as scripts/concatenate.py lays it out; `edit` may change the key -> tensor list first.
fs::path writeAuthorsLibrary(
    const fs::path& file, const std::vector<AuthorsExpert>& experts, const torch::Tensor& embeddings,
    DType dtype = DType::F32,
    const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& edit = {}) {
    std::vector<std::pair<std::string, torch::Tensor>> named{{"encoder.embed_tokens.weight", embeddings},
                                                             {"decoder.embed_tokens.weight", embeddings}};
    for (size_t i = 0; i < experts.size(); ++i)
        for (const auto& [module, layer1] : experts[i].layer1) {
            const std::string index = "__" + std::to_string(i);
            named.push_back({module + "._addons.expert_lora.layer1" + index, layer1});
            named.push_back({module + "._addons.expert_lora.layer2" + index, experts[i].layer2.at(module)});
            named.push_back(
                {module + "._addons.router.expert_embeddings" + index, experts[i].gate.at(module)});
        }
    if (edit) edit(named);
    const torch::ScalarType type = dtype == DType::BF16 ? torch::kBFloat16 : torch::kFloat;
    std::vector<torch::Tensor> keep;
    std::vector<TensorToSave> tensors;
    for (auto& [name, t] : named) {
        keep.push_back(t.to(type).contiguous());
        tensors.push_back({name, dtype, keep.back().sizes().vec(), keep.back().data_ptr()});
    }
    writePytorchCheckpoint(file, tensors);
    return file;
}

torch::Tensor logits(T5ModelImpl& m) {
    torch::InferenceMode guard;
    torch::Tensor ids = torch::tensor(std::vector<int64_t>{13, 7, 5, 22, 1}).unsqueeze(0);
    torch::Tensor mask = torch::ones_like(ids);
    return m.decode(torch::tensor(std::vector<int64_t>{0, 4, 9}).unsqueeze(0), m.encode(ids, mask), mask);
}

bool bitEqual(const torch::Tensor& a, const torch::Tensor& b) {
    return a.sizes() == b.sizes() && torch::equal(a.contiguous(), b.contiguous());
}

}  // namespace

class RThreeTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root_, model_dir_;
    PretrainedT5 t5_;
    torch::Tensor embeddings_;

    fs::path path(const std::string& name) const { return root_ / name; }

    torch::Tensor logitsUnder(const std::vector<LoraExpert>& experts, const std::string& name) {
        RoutingSpec spec;
        spec.method = routingMethodName(RoutingMethodId::Single);
        spec.expert = name;
        auto router = makeRouter(*t5_.model, experts, spec);
        return logits(*t5_.model);
    }

    // The same weights as the authors' expert, written as a PEFT folder by the ordinary writer.
    LoraExpert asPeft(const AuthorsExpert& a, const std::string& name) {
        LoraExpert e;
        e.name = name;
        e.settings.r = kRank;
        e.settings.lora_alpha = 1.0;
        e.settings.target_modules = LoraSettings::allLinearLeaves(t5_.config);
        for (const auto& [module, layer1] : a.layer1)
            e.modules[module] =
                LoraModule{layer1.t().contiguous(), a.layer2.at(module).t().contiguous(), a.gate.at(module)};
        const fs::path dir = path("peft-" + name) / name;
        saveLoraExpert(e, dir);
        return loadLoraExpert(dir, t5_.config);
    }

private Q_SLOTS:
    void initTestCase() {
        root_ = fs::path(tmp_.path().toStdString());
        model_dir_ = phatgoose::testing::writeTinyT5(path("model"), {.gated = true});
        t5_ = loadPretrainedT5(model_dir_);
        embeddings_ = t5_.model->named_parameters()["shared.weight"].detach().clone();
    }

    void importedExpertsEqualTheirPeftTwins() {
        const auto authors = randomAuthorsExperts(t5_.config, 3, 1);
        const fs::path best = writeAuthorsLibrary(path("best.pt"), authors, embeddings_);
        const RThreeImportReport report =
            importRThreeLibrary({.checkpoint = best, .model_dir = model_dir_, .out = path("imported")});
        QCOMPARE(report.experts, int64_t(3));
        QCOMPARE(report.rank, kRank);
        QVERIFY2(report.warnings.empty(), report.warnings.empty() ? "" : report.warnings[0].c_str());
        const std::vector<LoraExpert> imported = ExpertLibrary::open(path("imported"), t5_.config).experts();
        QCOMPARE(imported.size(), size_t(3));
        QCOMPARE(imported[0].name, std::string("expert_000"));
        for (size_t i = 0; i < 3; ++i) {
            const LoraExpert& e = imported[i];
            QVERIFY(e.hasGate());
            QCOMPARE(e.scale(), 1.0 / 16.0);  // (x layer1 layer2) / 16
            QCOMPARE(e.modules.size(), t5LinearSites(t5_.config).size());
            for (const auto& [module, m] : e.modules) {
                QVERIFY(bitEqual(m.gate, authors[i].gate.at(module)));  // gates bit for bit
                QVERIFY(bitEqual(m.A, authors[i].layer1.at(module).t()));
                QVERIFY(bitEqual(m.B, authors[i].layer2.at(module).t()));
            }
            QVERIFY(fs::exists(e.dir / "phatgoose_provenance.json"));
        }
        // The authors' formula, on one module: W x + (x layer1 layer2) / 16.
        const std::string q0 = "encoder.block.0.layer.0.SelfAttention.q";
        const torch::Tensor x = torch::randn({5, t5_.config.d_model});
        const LoraModule& m = imported[1].modules.at(q0);
        const torch::Tensor ours = imported[1].scale() * torch::mm(torch::mm(x, m.A.t()), m.B.t());
        const torch::Tensor theirs =
            torch::mm(torch::mm(x, authors[1].layer1.at(q0)), authors[1].layer2.at(q0)) / 16;
        QVERIFY(torch::allclose(ours, theirs, 1e-6, 1e-6));
        // Logits under each expert equal those of the same weights loaded as PEFT folders.
        std::vector<LoraExpert> twins;
        for (size_t i = 0; i < 3; ++i) twins.push_back(asPeft(authors[i], imported[i].name));
        for (size_t i = 0; i < 3; ++i) {
            const torch::Tensor a = logitsUnder(imported, imported[i].name);
            const torch::Tensor b = logitsUnder(twins, twins[i].name);
            QVERIFY((a - b).abs().max().item<double>() <= 1e-5);
            QVERIFY((a - logits(*t5_.model)).abs().max().item<double>() > 1e-3);  // the expert matters
        }
    }

    void exportThenImportIsBitExact() {
        const auto authors = randomAuthorsExperts(t5_.config, 2, 2);
        importRThreeLibrary({.checkpoint = writeAuthorsLibrary(path("rt.pt"), authors, embeddings_),
                             .model_dir = model_dir_,
                             .out = path("rt-library")});
        const std::vector<LoraExpert> library = ExpertLibrary::open(path("rt-library"), t5_.config).experts();
        exportRThreeLibrary(library, model_dir_, path("exported.pt"));
        const PytorchCheckpoint exported = PytorchCheckpoint::open(path("exported.pt"));
        QVERIFY(exported.find("encoder.embed_tokens.weight"));
        QVERIFY(exported.find("encoder.block.0.layer.0.SelfAttention.q._addons.expert_lora.layer1__1"));
        importRThreeLibrary(
            {.checkpoint = path("exported.pt"), .model_dir = model_dir_, .out = path("rt-again")});
        const std::vector<LoraExpert> again = ExpertLibrary::open(path("rt-again"), t5_.config).experts();
        QCOMPARE(again.size(), library.size());
        for (size_t i = 0; i < library.size(); ++i)
            for (const auto& [module, m] : library[i].modules) {
                QVERIFY(bitEqual(again[i].modules.at(module).A, m.A));
                QVERIFY(bitEqual(again[i].modules.at(module).B, m.B));
                QVERIFY(bitEqual(again[i].modules.at(module).gate, m.gate));
            }
        // The adapter files themselves are identical byte for byte.
        for (const char* file :
             {"adapter_model.safetensors", "phatgoose_gate.safetensors", "adapter_config.json"})
            QCOMPARE(readFileBytes(path("rt-again") / "expert_001" / file),
                     readFileBytes(path("rt-library") / "expert_001" / file));
    }

    void exportRefusesWhatTheAuthorsLayoutCannotHold() {
        const auto authors = randomAuthorsExperts(t5_.config, 1, 3);
        LoraExpert e = asPeft(authors[0], "ungated");
        for (auto& [module, m] : e.modules) m.gate = torch::Tensor();
        try {
            exportRThreeLibrary({e}, model_dir_, path("refused.pt"));
            QFAIL("an ungated expert was exported");
        } catch (const Error& err) {
            QVERIFY2(QString(err.what()).contains("has no gate"), err.what());
        }
        LoraExpert scaled = asPeft(authors[0], "scaled");
        scaled.settings.lora_alpha = 32;
        QVERIFY_EXCEPTION_THROWN(exportRThreeLibrary({scaled}, model_dir_, path("refused.pt")), Error);
        QVERIFY(!fs::exists(path("refused.pt")));
    }

    void bf16LibrariesAndNamesAndTheCli() {
        const auto authors = randomAuthorsExperts(t5_.config, 3, 4);
        const fs::path best = writeAuthorsLibrary(path("bf16.pt"), authors, embeddings_, DType::BF16);
        writeFileBytes(path("names.txt"), "qa\n  summarise \n\nclassify\n");
        const phatgoose::testing::CliRun r = phatgoose::testing::runPhatgoose(
            {"import", "r-three", best.string(), "--model", model_dir_.string(), "--out",
             path("bf16-lib").string(), "--names", path("names.txt").string(), "--dtype", "bf16"});
        QVERIFY2(r.code == 0, r.err.c_str());
        QVERIFY2(r.err.find("imported 3/3 experts") != std::string::npos, r.err.c_str());
        const std::vector<LoraExpert> lib = ExpertLibrary::open(path("bf16-lib"), t5_.config).experts();
        QCOMPARE(lib[0].name, std::string("classify"));  // sorted by name, as libraries load
        QCOMPARE(lib[1].name, std::string("qa"));
        // Stored BF16 read back exactly as the BF16 values the file held.
        const std::string q0 = "encoder.block.0.layer.0.SelfAttention.q";
        QVERIFY(bitEqual(lib[1].modules.at(q0).gate,
                         authors[0].gate.at(q0).to(torch::kBFloat16).to(torch::kFloat)));
        QVERIFY(fs::file_size(path("bf16-lib") / "qa" / "adapter_model.safetensors") <
                fs::file_size(path("imported") / "expert_000" / "adapter_model.safetensors") * 6 / 10);
        // The authors' names for their library sizes.
        QCOMPARE(defaultRThreeNames(36).front(), std::string("P3Agnews"));
        QCOMPARE(defaultRThreeNames(36).size(), size_t(36));
        QCOMPARE(defaultRThreeNames(166)[36], std::string("Flanv2zsAi2arceasy"));
        QCOMPARE(defaultRThreeNames(166).back(), std::string("Flanv2zsWmt14translatefren"));
        QCOMPARE(defaultRThreeNames(2).back(), std::string("expert_001"));
    }

    void aDifferentBaseModelIsNamed() {
        const auto authors = randomAuthorsExperts(t5_.config, 1, 5);
        torch::Tensor other = embeddings_.clone();
        other[3][2] += 0.5;
        const RThreeImportReport report =
            importRThreeLibrary({.checkpoint = writeAuthorsLibrary(path("other.pt"), authors, other),
                                 .model_dir = model_dir_,
                                 .out = path("other-lib")});
        QCOMPARE(report.warnings.size(), size_t(2));
        QVERIFY2(
            QString::fromStdString(report.warnings[0]).contains("largest difference 0.5 at row 3, column 2"),
            report.warnings[0].c_str());
    }

    void badLibrariesLeaveNothing_data() {
        QTest::addColumn<QString>("defect");
        QTest::addColumn<QString>("message");
        QTest::newRow("a missing layer2") << "missing"
                                          << "expert 1 lacks its layer2 at";
        QTest::newRow("an unknown module") << "unknown"
                                           << "does not have";
        QTest::newRow("a gate of the wrong length") << "gate"
                                                    << "a router embedding is [d_in]";
        QTest::newRow("a wrong width") << "width"
                                       << "layer1 is [d_in, r]";
        QTest::newRow("mixed ranks") << "rank"
                                     << "the library's rank is 16";
        QTest::newRow("a gap in the indices") << "gap"
                                              << "expert 1 is missing";
        QTest::newRow("a stray tensor") << "stray"
                                        << "unexpected tensor 'optimizer.state'";
        QTest::newRow("a hostile pickle") << "hostile"
                                          << "bad.pt";
        QTest::newRow("a truncated file") << "truncated"
                                          << "bad.pt";
        QTest::newRow("names that do not fit") << "names"
                                               << "--names gives 1 names but";
    }
    void badLibrariesLeaveNothing() {
        QFETCH(QString, defect);
        QFETCH(QString, message);
        const auto authors = randomAuthorsExperts(t5_.config, 3, 6);
        const std::string q = "encoder.block.1.layer.0.SelfAttention.q._addons.";
        auto edit = [&](std::vector<std::pair<std::string, torch::Tensor>>& named) {
            for (auto it = named.begin(); it != named.end(); ++it) {
                if (defect == "missing" && it->first == q + "expert_lora.layer2__1") {
                    named.erase(it);
                    return;
                }
                if (defect == "gate" && it->first == q + "router.expert_embeddings__2")
                    it->second = torch::zeros({7});
                if (defect == "width" && it->first == q + "expert_lora.layer1__0")
                    it->second = torch::zeros({31, 16});
                if (defect == "rank" && it->first == q + "expert_lora.layer1__2") {
                    it->second = torch::zeros({32, 8});
                    (it + 1)->second = torch::zeros({8, 32});
                }
            }
            if (defect == "unknown")
                named.push_back({"encoder.block.9.layer.0.SelfAttention.q._addons.expert_lora.layer1__0",
                                 torch::zeros({32, 16})});
            if (defect == "gap")
                for (auto& [name, t] : named)
                    if (name.size() > 3 && name.substr(name.size() - 3) == "__1")
                        name = name.substr(0, name.size() - 1) + "7";
            if (defect == "stray") named.push_back({"optimizer.state", torch::zeros({2})});
        };
        const fs::path best = writeAuthorsLibrary(path("bad.pt"), authors, embeddings_, DType::F32, edit);
        if (defect == "hostile")  // the classic: a pickle that would call os.system when unpickled
            writeFileBytes(best, std::string("\x80\x02"
                                             "cos\nsystem\nX\x05\0\0\0touch\x85R.",
                                             26));
        if (defect == "truncated") fs::resize_file(best, fs::file_size(best) / 2);
        RThreeImportOptions options{.checkpoint = best, .model_dir = model_dir_, .out = path("bad-lib")};
        if (defect == "names") options.names = {"only-one"};
        try {
            importRThreeLibrary(options);
            QFAIL("a bad library was imported");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
        QVERIFY(!fs::exists(path("bad-lib")));
        for (const auto& entry : fs::directory_iterator(root_))
            QVERIFY2(entry.path().filename().string().find(".tmp-") == std::string::npos,
                     entry.path().c_str());
    }

    void cancellingAnImportLeavesNothing() {
        const auto authors = randomAuthorsExperts(t5_.config, 3, 7);
        std::atomic<bool> cancel{false};
        try {
            importRThreeLibrary(
                {.checkpoint = writeAuthorsLibrary(path("cancel.pt"), authors, embeddings_),
                 .model_dir = model_dir_,
                 .out = path("cancelled-lib")},
                [&](const RThreeProgress& p) { cancel = p.experts_done >= 1; }, &cancel);
            QFAIL("the import did not stop");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("cancelled"), e.what());
        }
        QVERIFY(!fs::exists(path("cancelled-lib")));
    }

    // LoraHub-style adapters: adapter_model.bin only, r 16, alpha 32, dropout 0.1, targets q and v.
    void binAdaptersEqualTheirSafetensorsTwins() {
        const fs::path dir = path("lorahub") / "flan_task";
        fs::create_directories(dir);
        writeFileBytes(dir / "adapter_config.json",
                       R"({"peft_type": "LORA", "task_type": "SEQ_2_SEQ_LM", "r": 16, "lora_alpha": 32,
                           "lora_dropout": 0.1, "target_modules": ["q", "v"], "bias": "none",
                           "base_model_name_or_path": "google/flan-t5-large", "inference_mode": true,
                           "auto_mapping": null, "fan_in_fan_out": false})");
        torch::manual_seed(11);
        std::vector<torch::Tensor> keep;
        std::vector<TensorToSave> tensors;
        LoraExpert twin;
        twin.name = "flan_task";
        twin.settings.r = 16;
        twin.settings.lora_alpha = 32;
        twin.settings.target_modules = {"q", "v"};
        for (const LinearSite& s : t5LinearSites(t5_.config)) {
            if (s.leaf != "q" && s.leaf != "v") continue;
            LoraModule m{torch::randn({16, s.d_in}) * 0.1, torch::randn({s.d_out, 16}) * 0.1, {}};
            for (char which : {'A', 'B'}) {
                keep.push_back((which == 'A' ? m.A : m.B).contiguous());
                tensors.push_back(
                    {peftKey(s.path, which), DType::F32, keep.back().sizes().vec(), keep.back().data_ptr()});
            }
            twin.modules[s.path] = m;
        }
        writePytorchCheckpoint(dir / "adapter_model.bin", tensors);
        const LoraExpert bin = loadLoraExpert(dir, t5_.config);
        saveLoraExpert(twin, path("twin") / "flan_task");
        const LoraExpert safe = loadLoraExpert(path("twin") / "flan_task", t5_.config);
        QCOMPARE(bin.modules.size(), safe.modules.size());
        const torch::Tensor a = logitsUnder({bin}, "flan_task");
        const torch::Tensor b = logitsUnder({safe}, "flan_task");
        QVERIFY(torch::equal(a, b));
        // The same folder with a hostile pickle is refused, and nothing of it runs.
        writeFileBytes(dir / "adapter_model.bin", std::string("\x80\x02"
                                                              "cposix\nsystem\nX\x05\0\0\0touch\x85R.",
                                                              29));
        try {
            loadLoraExpert(dir, t5_.config);
            QFAIL("a hostile adapter_model.bin was loaded");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("adapter_model.bin"), e.what());
        }
    }

    void hubIdsResolveInTheLocalCache() {
        const fs::path cache = path("hf-cache");
        const fs::path repo = cache / "models--google--tiny-t5";
        fs::create_directories(repo / "refs");
        fs::create_directories(repo / "snapshots" / "old");
        fs::copy(model_dir_, repo / "snapshots" / "abc123", fs::copy_options::recursive);
        writeFileBytes(repo / "refs" / "main", "abc123\n");
        qputenv("HF_HUB_CACHE", QByteArray::fromStdString(cache.string()));
        const PretrainedT5 t5 = loadPretrainedT5("google/tiny-t5");
        QCOMPARE(t5.dir, repo / "snapshots" / "abc123");
        try {
            loadPretrainedT5("google/not-there");
            QFAIL("a model missing from the cache loaded");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(
                         QString::fromStdString((cache / "models--google--not-there").string())),
                     e.what());
            QVERIFY2(QString(e.what()).contains("nothing is downloaded"), e.what());
        }
        // HF_HOME/hub when HF_HUB_CACHE is unset.
        qunsetenv("HF_HUB_CACHE");
        fs::create_directories(path("hf-home"));
        fs::rename(cache, path("hf-home") / "hub");
        qputenv("HF_HOME", QByteArray::fromStdString(path("hf-home").string()));
        const phatgoose::testing::CliRun r = phatgoose::testing::runPhatgoose({"info", "google/tiny-t5"});
        qunsetenv("HF_HOME");
        QVERIFY2(r.code == 0, r.err.c_str());
    }
};

QTEST_GUILESS_MAIN(RThreeTest)
#include "test_rthree.moc"
