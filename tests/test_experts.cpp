// LoRA experts as PEFT adapter folders: the reference PEFT adapters, bit-exact save/load round trips, target
// selection with PEFT's rules, initialisation, expert libraries, crash-safe saving, and every bad input the
// loader must refuse with a message that names the file and the problem.
#include <QTemporaryDir>
#include <QtTest>
#include <array>
#include <atomic>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "error.h"
#include "experts/checked_weights.h"
#include "experts/expert_library.h"
#include "experts/lora_expert.h"
#include "fixtures/files.h"
#include "fixtures/tiny_t5.h"
#include "model/safetensors.h"

using namespace phatgoose;
using nlohmann::json;
using phatgoose::testing::tinyConfig;
namespace fs = std::filesystem;

namespace {

using TensorMap = std::map<std::string, torch::Tensor>;

fs::path referenceDir() {
    const char* env = std::getenv("PHATGOOSE_REFERENCE_DIR");
    return env ? fs::path(env) : fs::path();
}

json readJson(const fs::path& p) {
    return json::parse(phatgoose::testing::readFileBytes(p));
}
void writeJson(const fs::path& p, const json& j) {
    phatgoose::testing::writeFileBytes(p, j.dump(2));
}

// The tensors of a file written by the workbench (F32).
TensorMap readTensors(const fs::path& p) {
    SafetensorsFile file(p);
    TensorMap out;
    for (const TensorInfo& info : file.header().tensors) {
        torch::Tensor t = torch::empty(info.shape, torch::kFloat);
        file.read(info, t.data_ptr());
        out[info.name] = t;
    }
    return out;
}

torch::Dtype torchDtype(DType d) {
    switch (d) {
        case DType::F16:
            return torch::kHalf;
        case DType::BF16:
            return torch::kBFloat16;
        case DType::I32:
            return torch::kInt;
        default:
            return torch::kFloat;
    }
}

void writeTensors(const fs::path& p, const TensorMap& tensors, DType dtype = DType::F32) {
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> out;
    for (const auto& [name, t] : tensors) {
        keep.push_back(t.to(torchDtype(dtype)).contiguous());
        out.push_back({name, dtype, keep.back().sizes().vec(), keep.back().data_ptr()});
    }
    writeSafetensors(p, out, {{"format", "pt"}});
}

void editTensors(const fs::path& p, const std::function<void(TensorMap&)>& edit) {
    TensorMap tensors = readTensors(p);
    edit(tensors);
    writeTensors(p, tensors);
}

void editJson(const fs::path& p, const std::function<void(json&)>& edit) {
    json j = readJson(p);
    edit(j);
    writeJson(p, j);
}

bool sameBits(const torch::Tensor& a, const torch::Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    const torch::Tensor x = a.contiguous(), y = b.contiguous();
    return x.scalar_type() == y.scalar_type() && x.sizes() == y.sizes() &&
           std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

bool sameCurve(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
    return true;
}

void expectSameModules(const LoraExpert& a, const LoraExpert& b) {
    QCOMPARE(a.modules.size(), b.modules.size());
    for (const auto& [path, m] : a.modules) {
        auto it = b.modules.find(path);
        QVERIFY2(it != b.modules.end(), path.c_str());
        QVERIFY2(sameBits(m.A, it->second.A), path.c_str());
        QVERIFY2(sameBits(m.B, it->second.B), path.c_str());
        QVERIFY2(sameBits(m.gate, it->second.gate), path.c_str());
    }
}

// Asserts that `action` throws a one-line Error whose message contains every fragment.
void expectError(const std::function<void()>& action, const QStringList& fragments) {
    try {
        action();
    } catch (const Error& e) {
        for (const QString& f : fragments)
            QVERIFY2(QString(e.what()).contains(f), qPrintable(QString("'%1' lacks '%2'").arg(e.what(), f)));
        QVERIFY2(!QString(e.what()).contains('\n'), "error messages are one line");
        return;
    }
    QFAIL("no phatgoose::Error was thrown");
}

LoraSettings qvSettings(const std::string& base = "tiny-t5") {
    LoraSettings s;
    s.r = 4;
    s.lora_alpha = 8.0;
    s.target_modules = {"q", "v"};
    s.base_model_name_or_path = base;
    return s;
}

// An expert as training leaves it: random A and B (init leaves B zero, which would hide a swapped
// round trip), optionally a gate and both records.
LoraExpert trainedExpert(const std::string& name, const LoraSettings& settings, const T5Config& base,
                         uint64_t seed, bool gate) {
    LoraExpert e = initLoraExpert(name, settings, base, seed);
    torch::manual_seed(seed);
    for (auto& [path, m] : e.modules) {
        m.B = 0.1 * torch::randn(m.B.sizes());           // [d_out, r]
        if (gate) m.gate = torch::randn({m.A.size(1)});  // [d_in]
    }
    if (gate) e.gate_record = GateRecord{100, 5e-3, 1024, seed, 0.25, "train.jsonl", {0.9, 0.5, 0.25}};
    e.training_record =
        TrainingRecord{1000, 0.5, 0.625, "train.jsonl", name + "-task", {2.0, 1.0, std::nan("")}};
    return e;
}

// Files beside `dir`'s own that a failed atomic write would leave behind.
QStringList temporaryFiles(const fs::path& dir) {
    QStringList names;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().filename().string().find(".tmp-") != std::string::npos)
            names << QString::fromStdString(entry.path().filename().string());
    return names;
}

enum class Bad {
    ShapeA,
    ShapeB,
    RankMismatch,
    UnknownTarget,
    RankZero,
    RankFloat,
    AlphaString,
    NaNWeight,
    InfWeight,
    GateMissingKey,
    GateWrongShape,
    GateExtraKey,
    GateNaN,
    Dora,
    ModulesToSave,
    Bias,
    FanInFanOut,
    RankPattern,
    PeftType,
    MalformedConfig,
    MissingConfig,
    MissingWeights,
    UnexpectedKey,
    DoraMagnitudeKey,
    MissingB,
    BadRegex,
    LayersPatternOther,
    LayersWithoutPattern,
    IntegerDtype,
    GateRecordWithoutGate,
    MalformedGateRecord,
    TrainingSummaryType,
};

const std::string kQ0 = "encoder.block.0.layer.0.SelfAttention.q";

void breakExpert(Bad bad, const fs::path& dir) {
    const fs::path config = dir / "adapter_config.json", weights = dir / "adapter_model.safetensors",
                   gate = dir / "phatgoose_gate.safetensors";
    switch (bad) {
        case Bad::ShapeA:
            return editTensors(weights, [](TensorMap& t) { t[peftKey(kQ0, 'A')] = torch::ones({4, 33}); });
        case Bad::ShapeB:
            return editTensors(weights, [](TensorMap& t) {
                t[peftKey("decoder.block.2.layer.1.EncDecAttention.v", 'B')] = torch::ones({31, 4});
            });
        case Bad::RankMismatch:
            return editTensors(weights, [](TensorMap& t) { t[peftKey(kQ0, 'A')] = torch::ones({3, 32}); });
        case Bad::UnknownTarget:
            return editJson(config, [](json& j) { j["target_modules"] = {"query", "value"}; });
        case Bad::RankZero:
            return editJson(config, [](json& j) { j["r"] = 0; });
        case Bad::RankFloat:
            return editJson(config, [](json& j) { j["r"] = 4.5; });
        case Bad::AlphaString:
            return editJson(config, [](json& j) { j["lora_alpha"] = "8"; });
        case Bad::NaNWeight:
            return editTensors(weights, [](TensorMap& t) {
                t[peftKey("encoder.block.1.layer.0.SelfAttention.v", 'A')][2][5] = std::nanf("");
            });
        case Bad::InfWeight:
            return editTensors(weights, [](TensorMap& t) { t[peftKey(kQ0, 'B')][0][0] = INFINITY; });
        case Bad::GateMissingKey:
            return editTensors(gate,
                               [](TensorMap& t) { t.erase("decoder.block.1.layer.0.SelfAttention.q.gate"); });
        case Bad::GateWrongShape:
            return editTensors(gate, [](TensorMap& t) {
                t["encoder.block.1.layer.0.SelfAttention.v.gate"] = torch::zeros({31});
            });
        case Bad::GateExtraKey:
            return editTensors(gate, [](TensorMap& t) {
                t["encoder.block.0.layer.0.SelfAttention.k.gate"] = torch::zeros({32});
            });
        case Bad::GateNaN:
            return editTensors(gate, [](TensorMap& t) { t[kQ0 + ".gate"][7] = std::nanf(""); });
        case Bad::Dora:
            return editJson(config, [](json& j) { j["use_dora"] = true; });
        case Bad::ModulesToSave:
            return editJson(config, [](json& j) { j["modules_to_save"] = {"lm_head"}; });
        case Bad::Bias:
            return editJson(config, [](json& j) { j["bias"] = "all"; });
        case Bad::FanInFanOut:
            return editJson(config, [](json& j) { j["fan_in_fan_out"] = true; });
        case Bad::RankPattern:
            return editJson(config, [](json& j) { j["rank_pattern"] = {{"q", 8}}; });
        case Bad::PeftType:
            return editJson(config, [](json& j) { j["peft_type"] = "IA3"; });
        case Bad::MalformedConfig:
            return phatgoose::testing::writeFileBytes(config, "{\"peft_type\": \"LORA\", \"r\": 4,");
        case Bad::MissingConfig:
            return (void)fs::remove(config);
        case Bad::MissingWeights:
            return (void)fs::remove(weights);
        case Bad::UnexpectedKey:
            return editTensors(weights, [](TensorMap& t) {
                t[peftKey("encoder.block.0.layer.0.SelfAttention.k", 'A')] = torch::zeros({4, 32});
            });
        case Bad::DoraMagnitudeKey:
            return editTensors(weights, [](TensorMap& t) {
                t["base_model.model." + kQ0 + ".lora_magnitude_vector"] = torch::ones({32});
            });
        case Bad::MissingB:
            return editTensors(weights, [](TensorMap& t) {
                t.erase(peftKey("decoder.block.0.layer.1.EncDecAttention.q", 'B'));
            });
        case Bad::BadRegex:
            return editJson(config, [](json& j) { j["target_modules"] = "encoder.(q"; });
        case Bad::LayersPatternOther:
            return editJson(config, [](json& j) {
                j["layers_to_transform"] = {0};
                j["layers_pattern"] = "layers";
            });
        case Bad::LayersWithoutPattern:
            return editJson(config, [](json& j) { j["layers_to_transform"] = {0}; });
        case Bad::IntegerDtype:
            return writeTensors(weights, readTensors(weights), DType::I32);
        case Bad::GateRecordWithoutGate:
            return (void)fs::remove(gate);
        case Bad::MalformedGateRecord:
            return phatgoose::testing::writeFileBytes(dir / "phatgoose_gate.json", "[1, 2");
        case Bad::TrainingSummaryType:
            return editJson(dir / "training_summary.json", [](json& j) { j["steps"] = "many"; });
    }
}

}  // namespace

class ExpertsTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    int counter_ = 0;

    // A fresh folder for each case, so that no case sees another's files.
    fs::path fresh(const std::string& tag) {
        return fs::path(tmp_.path().toStdString()) / (tag + "-" + std::to_string(counter_++));
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(tmp_.isValid());
        // This suite's own ledger of checked weight files (read by CheckedWeights::forUser on first use).
        qputenv("PHATGOOSE_CACHE_DIR", QByteArray::fromStdString(fresh("cache").string()));
    }

    // ---- the reference PEFT adapters (peft 0.12) ----

    void referenceAdaptersLoad_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QStringList>("leaves");
        QTest::newRow("v1.0 relu tied") << "t5v10_relu_tied" << QStringList{"q", "k", "v", "o", "wi", "wo"};
        QTest::newRow("v1.1 gated-gelu untied")
            << "t5v11_gatedgelu_untied" << QStringList{"q", "v", "wi_0", "wi_1", "wo"};
    }
    void referenceAdaptersLoad() {
        QFETCH(QString, name);
        QFETCH(QStringList, leaves);
        const fs::path dir = referenceDir() / name.toStdString();
        if (!fs::exists(dir / "lora" / "adapter_config.json"))
            QSKIP("no reference cases (PHATGOOSE_REFERENCE_DIR)");
        const T5Config base = T5Config::fromFile(dir / "model" / "config.json");
        const LoraExpert e = loadLoraExpert(dir / "lora", base);
        QCOMPARE(e.name, std::string("lora"));
        QCOMPARE(e.settings.r, int64_t(4));
        QCOMPARE(e.settings.lora_alpha, 8.0);
        QCOMPARE(e.scale(), 2.0);
        QCOMPARE(e.settings.base_model_name_or_path, std::string("../model"));
        QVERIFY(!e.hasGate());
        QVERIFY(!e.gate_record && !e.training_record);

        SafetensorsFile raw(dir / "lora" / "adapter_model.safetensors");
        size_t expected = 0;
        for (const LinearSite& site : t5LinearSites(base)) {
            if (!leaves.contains(QString::fromStdString(site.leaf))) continue;
            ++expected;
            auto it = e.modules.find(site.path);
            QVERIFY2(it != e.modules.end(), site.path.c_str());
            QCOMPARE(it->second.A.sizes().vec(), (std::vector<int64_t>{4, site.d_in}));
            QCOMPARE(it->second.B.sizes().vec(), (std::vector<int64_t>{site.d_out, 4}));
            QVERIFY(it->second.A.scalar_type() == torch::kFloat);
            for (char which : {'A', 'B'}) {
                const TensorInfo* info = raw.header().find(peftKey(site.path, which));
                QVERIFY(info && info->dtype == DType::F32);
                std::string bytes(info->end - info->begin, '\0');
                raw.read(*info, bytes.data());
                const torch::Tensor& t = which == 'A' ? it->second.A : it->second.B;
                QCOMPARE(size_t(t.nbytes()), bytes.size());
                QVERIFY2(std::memcmp(t.data_ptr(), bytes.data(), bytes.size()) == 0, site.path.c_str());
            }
        }
        QCOMPARE(e.modules.size(), expected);
        QCOMPARE(raw.header().tensors.size(), 2 * expected);
    }

    // ---- save and load ----

    void roundTrip_data() {
        QTest::addColumn<bool>("gated");
        QTest::addColumn<bool>("gate");
        QTest::addColumn<bool>("rslora");
        QTest::addColumn<QString>("regex");
        QTest::addColumn<int>("layer");
        QTest::newRow("v1.0, q v") << false << false << false << "" << -1;
        QTest::newRow("v1.1, q v, with gate") << true << true << false << "" << -1;
        QTest::newRow("rsLoRA with gate") << false << true << true << "" << -1;
        QTest::newRow("regex targets") << true << true << false << R"(.*DenseReluDense\.wi_[01])" << -1;
        QTest::newRow("layers_to_transform") << false << true << false << "" << 1;
    }
    void roundTrip() {
        QFETCH(bool, gated);
        QFETCH(bool, gate);
        QFETCH(bool, rslora);
        QFETCH(QString, regex);
        QFETCH(int, layer);
        const T5Config base = tinyConfig({.gated = gated});
        LoraSettings s = qvSettings();
        s.use_rslora = rslora;
        if (!regex.isEmpty()) s.target_regex = regex.toStdString();
        if (layer >= 0) s.layers_to_transform = {layer};
        const LoraExpert saved = trainedExpert("expert", s, base, 11, gate);
        const fs::path dir = fresh("round-trip");
        saveLoraExpert(saved, dir);

        const LoraExpert loaded = loadLoraExpert(dir, base);
        QCOMPARE(loaded.name, dir.filename().string());
        QCOMPARE(loaded.settings.r, s.r);
        QCOMPARE(loaded.settings.lora_alpha, s.lora_alpha);
        QCOMPARE(loaded.settings.use_rslora, rslora);
        QCOMPARE(loaded.settings.target_modules,
                 regex.isEmpty() ? s.target_modules : std::vector<std::string>{});
        QCOMPARE(loaded.settings.target_regex, s.target_regex);
        QCOMPARE(loaded.settings.layers_to_transform, s.layers_to_transform);
        QCOMPARE(loaded.settings.base_model_name_or_path, s.base_model_name_or_path);
        QCOMPARE(loaded.scale(), rslora ? 8.0 / 2.0 : 8.0 / 4.0);
        QCOMPARE(loaded.hasGate(), gate);
        expectSameModules(saved, loaded);
        if (QTest::currentTestFailed()) return;

        QCOMPARE(loaded.gate_record.has_value(), gate);
        if (gate) {
            QCOMPARE(loaded.gate_record->steps, int64_t(100));
            QCOMPARE(loaded.gate_record->learning_rate, 5e-3);
            QCOMPARE(loaded.gate_record->batch_size, int64_t(1024));
            QCOMPARE(loaded.gate_record->seed, uint64_t(11));
            QCOMPARE(loaded.gate_record->final_loss, 0.25);
            QCOMPARE(loaded.gate_record->dataset, std::string("train.jsonl"));
            QVERIFY(sameCurve(loaded.gate_record->loss_curve, saved.gate_record->loss_curve));
        }
        QVERIFY(loaded.training_record);
        QCOMPARE(loaded.training_record->steps, int64_t(1000));
        QCOMPARE(loaded.training_record->best_valid_loss, 0.625);
        QCOMPARE(loaded.training_record->task, std::string("expert-task"));
        QVERIFY2(sameCurve(loaded.training_record->loss_curve, saved.training_record->loss_curve),
                 "a NaN in a loss curve survives as JSON null");

        // Saving what was loaded reproduces the files byte for byte.
        const fs::path again = fresh("round-trip-again");
        saveLoraExpert(loaded, again);
        for (const char* file :
             {"adapter_config.json", "adapter_model.safetensors", "phatgoose_gate.safetensors",
              "phatgoose_gate.json", "training_summary.json"}) {
            QCOMPARE(fs::exists(again / file), fs::exists(dir / file));
            if (fs::exists(dir / file))
                QVERIFY2(phatgoose::testing::readFileBytes(again / file) ==
                             phatgoose::testing::readFileBytes(dir / file),
                         file);
        }
    }

    void savedFilesArePeftAdapters() {
        const T5Config base = tinyConfig({});
        const fs::path dir = fresh("peft");
        saveLoraExpert(trainedExpert("peft", qvSettings(), base, 3, true), dir);
        const json j = readJson(dir / "adapter_config.json");
        const std::vector<std::pair<const char*, json>> expected = {
            {"peft_type", "LORA"},
            {"task_type", "SEQ_2_SEQ_LM"},
            {"r", 4},
            {"lora_alpha", 8.0},
            {"lora_dropout", 0.0},
            {"target_modules", {"q", "v"}},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"inference_mode", true},
            {"init_lora_weights", true},
            {"use_rslora", false},
            {"use_dora", false},
            {"modules_to_save", nullptr},
            {"layers_to_transform", nullptr},
            {"layers_pattern", nullptr},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()},
            {"base_model_name_or_path", "tiny-t5"},
            {"revision", nullptr},
        };
        for (const auto& [key, value] : expected)
            QVERIFY2(j.contains(key) && j.at(key) == value,
                     qPrintable(QString("%1: %2").arg(key, j.dump().c_str())));

        SafetensorsFile weights(dir / "adapter_model.safetensors");
        QCOMPARE(weights.header().metadata.at("format"), std::string("pt"));
        QCOMPARE(weights.header().tensors.size(), size_t(2 * 16));  // q, v: 2 x 2 encoder + 3 x 4 decoder
        const TensorInfo* a = weights.header().find("base_model.model." + kQ0 + ".lora_A.weight");
        const TensorInfo* b = weights.header().find("base_model.model." + kQ0 + ".lora_B.weight");
        QVERIFY(a && b);
        QCOMPARE(a->shape, (std::vector<int64_t>{4, 32}));
        QCOMPARE(b->shape, (std::vector<int64_t>{32, 4}));
        QVERIFY(a->dtype == DType::F32);

        SafetensorsFile gate(dir / "phatgoose_gate.safetensors");
        QCOMPARE(gate.header().tensors.size(), size_t(16));
        const TensorInfo* g = gate.header().find("decoder.block.2.layer.1.EncDecAttention.v.gate");
        QVERIFY(g);
        QCOMPARE(g->shape, std::vector<int64_t>{32});
        const json record = readJson(dir / "phatgoose_gate.json");
        for (const char* key :
             {"steps", "learning_rate", "batch_size", "seed", "final_loss", "dataset", "loss_curve"})
            QVERIFY2(record.contains(key), key);
    }

    void layersToTransformAreSavedWithTheBlockPattern() {
        LoraSettings s = qvSettings();
        s.layers_to_transform = {0, 2};
        const fs::path dir = fresh("layers");
        saveLoraExpert(trainedExpert("layers", s, tinyConfig({}), 5, false), dir);
        const json j = readJson(dir / "adapter_config.json");
        QVERIFY(j.at("layers_to_transform") == json({0, 2}));
        QVERIFY(j.at("layers_pattern") == json("block"));
    }

    void otherDtypesAndAdapterNamedKeysLoad_data() {
        QTest::addColumn<int>("dtype");
        QTest::newRow("F16") << int(DType::F16);
        QTest::newRow("BF16") << int(DType::BF16);
    }
    void otherDtypesAndAdapterNamedKeysLoad() {
        QFETCH(int, dtype);
        const T5Config base = tinyConfig({});
        const LoraExpert saved = trainedExpert("half", qvSettings(), base, 9, false);
        const fs::path dir = fresh("dtype");
        saveLoraExpert(saved, dir);
        // A raw PeftModel state dict keeps the adapter name: "...lora_A.default.weight".
        TensorMap renamed;
        for (auto& [key, t] : readTensors(dir / "adapter_model.safetensors"))
            renamed[key.substr(0, key.size() - std::strlen(".weight")) + ".default.weight"] = t;
        writeTensors(dir / "adapter_model.safetensors", renamed, DType(dtype));

        const LoraExpert loaded = loadLoraExpert(dir, base);
        const torch::Dtype narrow = torchDtype(DType(dtype));
        for (const auto& [path, m] : saved.modules) {
            const LoraModule& l = loaded.modules.at(path);
            // Kept as stored (a large library is mapped, never widened), and equal to the saved values.
            QVERIFY(l.A.scalar_type() == narrow && l.B.scalar_type() == narrow);
            QVERIFY(sameBits(l.A.to(torch::kFloat), m.A.to(narrow).to(torch::kFloat)));
            QVERIFY(sameBits(l.B.to(torch::kFloat), m.B.to(narrow).to(torch::kFloat)));
        }
    }

    // ---- which layers a config targets ----

    void regexTargetsAreFullMatched() {
        const T5Config base = tinyConfig({});
        LoraSettings s = qvSettings();
        s.target_regex = R"(decoder\.block\.\d+\.layer\.1\.EncDecAttention\.(k|v))";
        s.layers_to_transform = {0};  // PEFT ignores it for a regex
        const std::vector<LinearSite> sites = resolveTargets(s, base);
        QCOMPARE(sites.size(), size_t(6));  // 3 decoder blocks x {k, v}
        for (const LinearSite& site : sites) {
            QVERIFY(site.stack == Stack::Decoder);
            QCOMPARE(site.kind.rfind("EncDecAttention.", 0), size_t(0));
            QVERIFY(site.leaf == "k" || site.leaf == "v");
        }
        s.target_regex = "EncDecAttention";  // a search would find it; a full match does not
        expectError([&] { resolveTargets(s, base); },
                    {"target_modules 'EncDecAttention' match no linear layer"});
    }

    void listTargetsMatchWholeNamesAndBlocks() {
        const T5Config base = tinyConfig({});
        LoraSettings s = qvSettings();
        s.target_modules = {"q", "wo", "encoder.block.0.layer.0.SelfAttention.k"};
        s.layers_to_transform = {1};
        std::set<std::string> paths;
        for (const LinearSite& site : resolveTargets(s, base)) paths.insert(site.path);
        const std::set<std::string> expected = {
            "encoder.block.0.layer.0.SelfAttention.k",  // a full path is taken whatever its block, as in PEFT
            "encoder.block.1.layer.0.SelfAttention.q",  "encoder.block.1.layer.1.DenseReluDense.wo",
            "decoder.block.1.layer.0.SelfAttention.q",  "decoder.block.1.layer.1.EncDecAttention.q",
            "decoder.block.1.layer.2.DenseReluDense.wo"};
        QCOMPARE(paths, expected);

        LoraSettings wi = qvSettings();
        wi.target_modules = {"wi"};  // names whole path components: it does not match wi_0 / wi_1
        expectError([&] { resolveTargets(wi, tinyConfig({.gated = true})); },
                    {"target_modules [\"wi\"] match no linear layer", "gated-gelu"});
        QCOMPARE(resolveTargets(wi, base).size(), size_t(5));
    }

    void allLinearLeavesCoverEveryLinearLayer_data() {
        QTest::addColumn<bool>("gated");
        QTest::newRow("v1.0") << false;
        QTest::newRow("v1.1") << true;
    }
    void allLinearLeavesCoverEveryLinearLayer() {
        QFETCH(bool, gated);
        const T5Config base = tinyConfig({.gated = gated});
        LoraSettings s = qvSettings();
        s.target_modules = LoraSettings::allLinearLeaves(base);
        QCOMPARE(resolveTargets(s, base).size(), t5LinearSites(base).size());
    }

    // ---- a fresh expert ----

    void initIsDeterministicPerSeed() {
        const T5Config base = tinyConfig({.gated = true});
        LoraSettings s = qvSettings();
        s.r = 8;
        s.target_modules = LoraSettings::allLinearLeaves(base);
        torch::manual_seed(123);
        const LoraExpert a = initLoraExpert("a", s, base, 7);
        const torch::Tensor after = torch::rand({4});
        torch::manual_seed(123);
        QVERIFY2(sameBits(after, torch::rand({4})), "the global generator is left alone");

        const LoraExpert again = initLoraExpert("a", s, base, 7);
        expectSameModules(a, again);
        const LoraExpert other = initLoraExpert("a", s, base, 8);
        QCOMPARE(a.modules.size(), t5LinearSites(base).size());
        QVERIFY(!a.hasGate());
        for (const auto& [path, m] : a.modules) {
            const double bound = 1.0 / std::sqrt(double(m.A.size(1)));
            QCOMPARE(m.A.sizes()[0], int64_t(8));
            QVERIFY2(m.A.abs().max().item<double>() <= bound, path.c_str());
            QVERIFY2(m.A.abs().max().item<double>() > 0.5 * bound, path.c_str());
            QVERIFY2(m.B.eq(0).all().item<bool>(), "B starts at zero, so a fresh expert changes nothing");
            QVERIFY2(!sameBits(m.A, other.modules.at(path).A), path.c_str());
        }
        s.r = 0;
        expectError([&] { initLoraExpert("zero", s, base, 1); }, {"'zero'", "rank must be positive"});
    }

    void parameterBytesCountEveryTensor() {
        const T5Config base = tinyConfig({});
        // 16 q/v modules; A [4, 32] + B [32, 4] = 256 floats each, a gate 32 more.
        QCOMPARE(trainedExpert("n", qvSettings(), base, 1, false).parameterBytes(), int64_t(16 * 256 * 4));
        QCOMPARE(trainedExpert("g", qvSettings(), base, 1, true).parameterBytes(), int64_t(16 * 288 * 4));
    }

    // ---- gates and the crash-safety of saving ----

    // ---- values checked once (experts/checked_weights.h) ----

    void checkedWeightsAreReadOnlyUntilRecorded() {
        const T5Config base = tinyConfig({});
        CheckedWeights& ledger = CheckedWeights::forUser();
        QVERIFY(ledger.ledgerFile() &&
                ledger.ledgerFile()->parent_path().string().find(tmp_.path().toStdString()) == 0);
        const fs::path dir = fresh("checked");
        saveLoraExpert(trainedExpert("checked", qvSettings(), base, 11, false), dir);
        QVERIFY2(ledger.vouchesFor(dir / "adapter_model.safetensors"), "saving checked every value");
        // A folder moved into place (as saving and importing do with their staged folders) keeps its record.
        const fs::path moved = fresh("moved");
        fs::rename(dir, moved);
        QVERIFY(ledger.vouchesFor(moved / "adapter_model.safetensors"));
        fs::rename(moved, dir);

        // A copy is another file: not vouched for until an open has read it whole.
        const fs::path copy = fresh("copy");
        fs::copy(dir, copy);
        const fs::path weights = copy / "adapter_model.safetensors";
        QVERIFY(!ledger.vouchesFor(weights));
        loadLoraExpert(copy, base);
        QVERIFY(ledger.vouchesFor(weights));

        // Rewritten with a NaN: a new file, read, refused, and never recorded.
        const std::string key = peftKey("encoder.block.0.layer.0.SelfAttention.q", 'A');
        editTensors(weights, [&](TensorMap& t) { t[key][1][2] = std::nanf(""); });
        QVERIFY(!ledger.vouchesFor(weights));
        expectError([&] { loadLoraExpert(copy, base); }, {"adapter_model.safetensors", "contains NaN"});
        QVERIFY(!ledger.vouchesFor(weights));

        // What a record buys: a vouched-for file's values are not read at all (here, wrongly vouched for,
        // its NaN loads as stored).
        ledger.record(weights);
        const LoraExpert unread = loadLoraExpert(copy, base);
        QVERIFY(
            std::isnan(unread.modules.at("encoder.block.0.layer.0.SelfAttention.q").A[1][2].item<float>()));

        // Any write in place, even of the same bytes, ends the record.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the file system's clock tick
        {
            std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
            char first = 0;
            f.read(&first, 1);
            f.seekp(0);
            f.write(&first, 1);
        }
        QVERIFY(!ledger.vouchesFor(weights));
        expectError([&] { loadLoraExpert(copy, base); }, {"contains NaN"});
    }

    void aDamagedLedgerIsEmptyAndRewritten() {
        const fs::path file = fresh("ledger") / "checked-weights.json";
        fs::create_directories(file.parent_path());
        const fs::path dir = fresh("vouched");
        saveLoraExpert(trainedExpert("vouched", qvSettings(), tinyConfig({}), 12, false), dir);
        const fs::path weights = dir / "adapter_model.safetensors";
        {
            CheckedWeights ledger(file);
            ledger.record(weights);
            QVERIFY(CheckedWeights(file).vouchesFor(weights));  // read back by another instance
        }
        for (const std::string& damage :
             {std::string("{\"format\": \"phatgoose-checked-weights\", \"files\": {\""),
              std::string("not json"),
              json{{"format", "phatgoose-checked-weights"},
                   {"files", {{weights.string(), {{"size", "big"}}}}}}
                  .dump()}) {
            phatgoose::testing::writeFileBytes(file, damage);
            CheckedWeights damaged(file);
            QVERIFY2(!damaged.vouchesFor(weights), damage.c_str());
            damaged.record(weights);
            QVERIFY(CheckedWeights(file).vouchesFor(weights));
            QCOMPARE(readJson(file).at("format").get<std::string>(),
                     std::string("phatgoose-checked-weights"));
        }
        // No ledger location: nothing is vouched for, nothing written.
        CheckedWeights none(std::nullopt);
        none.record(weights);
        QVERIFY(!none.vouchesFor(weights));
    }

    void savingAsF16RefusesValuesBeyondItsRange() {
        const T5Config base = tinyConfig({});
        LoraExpert e = trainedExpert("wide", qvSettings(), base, 13, false);
        e.modules.begin()->second.B[0][0] = 1e6f;  // finite in float32, Inf in F16
        const fs::path dir = fresh("f16");
        expectError([&] { saveLoraExpert(e, dir, DType::F16); },
                    {"cannot save expert 'wide'", "beyond the range of F16", "save it as F32"});
        QVERIFY(!fs::exists(dir));
        saveLoraExpert(e, dir, DType::BF16);  // BF16 has float32's range
        QVERIFY(fs::exists(dir / "adapter_model.safetensors"));
    }

    void saveGateAddsAGateToASavedExpert() {
        const T5Config base = tinyConfig({});
        LoraExpert e = trainedExpert("later", qvSettings(), base, 2, false);
        const fs::path dir = fresh("gate-later");
        saveLoraExpert(e, dir);
        expectError([&] { saveGate(e, dir); }, {"'later'", "has no gate"});
        for (auto& [path, m] : e.modules) m.gate = torch::randn({m.A.size(1)});
        e.gate_record = GateRecord{50, 1e-3, 4, 2, 0.5, "d.jsonl", {0.7, 0.5}};
        saveGate(e, dir);
        const LoraExpert loaded = loadLoraExpert(dir, base);
        QVERIFY(loaded.hasGate());
        expectSameModules(e, loaded);
        QCOMPARE(loaded.gate_record->steps, int64_t(50));
        expectError([&] { saveGate(e, dir / "absent"); }, {"absent", "not a folder"});
    }

    void resavingDropsStaleGateAndSummary() {
        const T5Config base = tinyConfig({});
        LoraExpert e = trainedExpert("retrained", qvSettings(), base, 4, true);
        const fs::path dir = fresh("stale");
        saveLoraExpert(e, dir);
        for (auto& [path, m] : e.modules) m.gate = torch::Tensor();
        e.gate_record.reset();
        e.training_record.reset();
        saveLoraExpert(e, dir);
        for (const char* file :
             {"phatgoose_gate.safetensors", "phatgoose_gate.json", "training_summary.json"})
            QVERIFY2(!fs::exists(dir / file), file);
        const LoraExpert loaded = loadLoraExpert(dir, base);
        QVERIFY(!loaded.hasGate() && !loaded.gate_record && !loaded.training_record);
    }

    void failedSaveWritesNothing_data() {
        QTest::addColumn<QString>("defect");
        QTest::addColumn<QString>("fragment");
        QTest::newRow("target folder is a file") << "file"
                                                 << "exists and is not a folder";
        QTest::newRow("B of the wrong shape") << "shape"
                                              << "do not fit A [r, d_in], B [d_out, r]";
        QTest::newRow("NaN in A") << "nan"
                                  << "NaN";
        QTest::newRow("gate on some modules only") << "partial-gate"
                                                   << "a gate covers every module or none";
        QTest::newRow("module outside target_modules") << "stray"
                                                       << "is not selected by its target_modules";
    }
    void failedSaveWritesNothing() {
        QFETCH(QString, defect);
        QFETCH(QString, fragment);
        const T5Config base = tinyConfig({});
        LoraExpert e = trainedExpert("broken", qvSettings(), base, 6, true);
        LoraModule& q0 = e.modules.at(kQ0);
        if (defect == "shape") q0.B = torch::zeros({32, 5});
        if (defect == "nan") q0.A[0][0] = std::nanf("");
        if (defect == "partial-gate") q0.gate = torch::Tensor();
        if (defect == "stray") e.modules["encoder.block.0.layer.0.SelfAttention.k"] = q0;

        // Into a new folder, and over an existing expert whose files must survive unchanged.
        const fs::path parent = fresh("failed-save");
        fs::create_directories(parent);
        const fs::path target = parent / "expert";
        if (defect == "file") phatgoose::testing::writeFileBytes(target, "precious");
        expectError([&] { saveLoraExpert(e, target); }, {QString::fromStdString(target.string()), fragment});
        if (defect == "file") {
            QCOMPARE(phatgoose::testing::readFileBytes(target), std::string("precious"));
        } else {
            QVERIFY2(!fs::exists(target), "nothing is created for an expert that cannot be saved");
            const fs::path existing = parent / "existing";
            saveLoraExpert(trainedExpert("existing", qvSettings(), base, 1, true), existing);
            std::map<std::string, std::string> before;
            for (const auto& entry : fs::directory_iterator(existing))
                before[entry.path().filename().string()] = phatgoose::testing::readFileBytes(entry.path());
            expectError([&] { saveLoraExpert(e, existing); }, {fragment});
            std::map<std::string, std::string> after;
            for (const auto& entry : fs::directory_iterator(existing))
                after[entry.path().filename().string()] = phatgoose::testing::readFileBytes(entry.path());
            QVERIFY2(before == after, "a refused save leaves the existing expert untouched");
        }
        QVERIFY2(temporaryFiles(parent).isEmpty(), qPrintable(temporaryFiles(parent).join(", ")));
    }

    // ---- everything the loader refuses ----

    void badInputsAreRefused_data() {
        QTest::addColumn<int>("bad");
        QTest::addColumn<QStringList>("fragments");
        const QString weights = "adapter_model.safetensors", config = "adapter_config.json",
                      gate = "phatgoose_gate.safetensors";
        auto row = [](const char* name, Bad bad, const QStringList& fragments) {
            QTest::newRow(name) << int(bad) << fragments;
        };
        row("A does not fit the base model", Bad::ShapeA,
            {weights,
             "'base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight' has shape [4, 33] "
             "but the base model's q takes d_in 32"});
        row("B does not fit the base model", Bad::ShapeB,
            {weights, "EncDecAttention.v.lora_B.weight' has shape [31, 4]", "gives d_out 32"});
        row("A of another rank", Bad::RankMismatch,
            {weights, "has shape [3, 32]", "adapter_config.json says r = 4"});
        row("target modules that do not exist", Bad::UnknownTarget,
            {config, "target_modules [\"query\",\"value\"] match no linear layer of the base model"});
        row("rank 0", Bad::RankZero, {config, "r is 0", "positive integer"});
        row("rank not an integer", Bad::RankFloat, {config, "r is 4.5", "positive integer"});
        row("alpha not a number", Bad::AlphaString, {config, "lora_alpha is \"8\"", "expected a number"});
        row("NaN in weights", Bad::NaNWeight,
            {weights,
             "'base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_A.weight' contains NaN"});
        row("Inf in weights", Bad::InfWeight, {weights, "SelfAttention.q.lora_B.weight' contains Inf"});
        row("gate file with a missing key", Bad::GateMissingKey,
            {gate, "no gate for module 'decoder.block.1.layer.0.SelfAttention.q'",
             "'decoder.block.1.layer.0.SelfAttention.q.gate'"});
        row("gate of the wrong shape", Bad::GateWrongShape,
            {gate, "'encoder.block.1.layer.0.SelfAttention.v.gate' has shape [31]", "needs [32]"});
        row("gate for a module without LoRA", Bad::GateExtraKey,
            {gate, "unexpected tensor 'encoder.block.0.layer.0.SelfAttention.k.gate'"});
        row("NaN in a gate", Bad::GateNaN, {gate, "SelfAttention.q.gate' contains NaN"});
        row("DoRA", Bad::Dora, {config, "use_dora is true", "DoRA"});
        row("modules_to_save", Bad::ModulesToSave, {config, "modules_to_save is [\"lm_head\"]"});
        row("trained biases", Bad::Bias, {config, "bias is \"all\""});
        row("fan_in_fan_out", Bad::FanInFanOut, {config, "fan_in_fan_out is true"});
        row("rank_pattern", Bad::RankPattern, {config, "rank_pattern is {\"q\":8}"});
        row("not LoRA", Bad::PeftType, {config, "peft_type is \"IA3\""});
        row("malformed adapter_config.json", Bad::MalformedConfig, {config, "malformed JSON"});
        row("missing adapter_config.json", Bad::MissingConfig, {config, "missing"});
        row("missing adapter_model.safetensors", Bad::MissingWeights, {weights, "missing"});
        row("unexpected tensor key", Bad::UnexpectedKey,
            {weights,
             "unexpected tensor 'base_model.model.encoder.block.0.layer.0.SelfAttention.k.lora_A.weight'"});
        row("DoRA magnitude tensor", Bad::DoraMagnitudeKey,
            {weights, "unexpected tensor", "lora_magnitude_vector"});
        row("missing B", Bad::MissingB,
            {weights, "missing 'base_model.model.decoder.block.0.layer.1.EncDecAttention.q.lora_B.weight'"});
        row("invalid regex", Bad::BadRegex, {config, "regex 'encoder.(q' is invalid"});
        row("layers_pattern other than block", Bad::LayersPatternOther,
            {config, "layers_pattern is \"layers\""});
        row("layers_to_transform without layers_pattern", Bad::LayersWithoutPattern,
            {config, "layers_to_transform is set but layers_pattern is not \"block\""});
        row("integer weights", Bad::IntegerDtype, {weights, "has dtype I32"});
        row("gate record without gate", Bad::GateRecordWithoutGate,
            {"phatgoose_gate.json", "without its gate vectors"});
        row("malformed gate record", Bad::MalformedGateRecord, {"phatgoose_gate.json", "malformed JSON"});
        row("training summary of the wrong type", Bad::TrainingSummaryType,
            {"training_summary.json", "steps is \"many\""});
    }
    void badInputsAreRefused() {
        QFETCH(int, bad);
        QFETCH(QStringList, fragments);
        const T5Config base = tinyConfig({});
        const fs::path dir = fresh("bad");
        saveLoraExpert(trainedExpert("bad", qvSettings(), base, 12, true), dir);
        QVERIFY(loadLoraExpert(dir, base).hasGate());
        breakExpert(Bad(bad), dir);
        fragments << QString::fromStdString(dir.string());
        expectError([&] { loadLoraExpert(dir, base); }, fragments);
    }

    void expertForAnotherBaseModelIsRefused() {
        const fs::path dir = fresh("other-base");
        saveLoraExpert(trainedExpert("v11", qvSettings(), tinyConfig({.gated = true}), 1, false), dir);
        LoraSettings ff = qvSettings();
        ff.target_modules = {"wi_0"};
        saveLoraExpert(trainedExpert("ff", ff, tinyConfig({.gated = true}), 1, false), dir / "ff");
        expectError([&] { loadLoraExpert(dir / "ff", tinyConfig({})); },
                    {"adapter_config.json", "target_modules [\"wi_0\"] match no linear layer", "relu"});
    }

    // ---- libraries ----

    void libraryListsItsExperts() {
        const T5Config base = tinyConfig({});
        const fs::path dir = fresh("library");
        LoraSettings regex = qvSettings();
        regex.target_regex = R"(.*DenseReluDense\.wo)";
        saveLoraExpert(trainedExpert("gamma", qvSettings(), base, 1, false), dir / "gamma");
        saveLoraExpert(trainedExpert("alpha", qvSettings(), base, 2, true), dir / "alpha");
        LoraExpert beta = trainedExpert("beta", regex, base, 3, false);
        beta.training_record.reset();
        saveLoraExpert(beta, dir / "beta");
        fs::create_directories(dir / "notes");  // not an expert: no adapter_config.json
        phatgoose::testing::writeFileBytes(dir / "notes" / "readme.txt", "hello");
        phatgoose::testing::writeFileBytes(dir / "README.md", "a library");

        // Progress after every expert, with the bytes so far; a set cancel flag stops before the first.
        std::vector<std::array<int64_t, 3>> reports;
        const ExpertLibrary library =
            ExpertLibrary::open(dir, base, {.progress = [&](int64_t done, int64_t total, int64_t bytes) {
                                    reports.push_back({done, total, bytes});
                                }});
        QCOMPARE(int(reports.size()), 3);
        int64_t so_far = 0;
        for (size_t i = 0; i < 3; ++i) {
            so_far += library.experts()[i].parameterBytes();
            QCOMPARE(reports[i], (std::array<int64_t, 3>{int64_t(i + 1), 3, so_far}));
        }
        const std::atomic<bool> cancelled{true};
        expectError([&] { ExpertLibrary::open(dir, base, {.cancel = &cancelled}); },
                    {"library", "cancelled"});
        QVERIFY(library.dir() == dir);
        const std::vector<ExpertListing> rows = library.listing();
        QCOMPARE(rows.size(), size_t(3));
        QCOMPARE(rows[0].name, std::string("alpha"));
        QCOMPARE(rows[1].name, std::string("beta"));
        QCOMPARE(rows[2].name, std::string("gamma"));
        QCOMPARE(rows[0].task, std::string("alpha-task"));
        QCOMPARE(rows[1].task, std::string());
        QCOMPARE(rows[0].rank, int64_t(4));
        QCOMPARE(rows[0].alpha, 8.0);
        QCOMPARE(rows[0].targets, (std::vector<std::string>{"q", "v"}));
        QCOMPARE(rows[1].targets, std::vector<std::string>{R"(.*DenseReluDense\.wo)"});
        QCOMPARE(rows[2].base_model, std::string("tiny-t5"));
        QVERIFY(rows[0].has_gate && !rows[1].has_gate && !rows[2].has_gate);
        QCOMPARE(rows[0].gate_loss, 0.25);
        QCOMPARE(rows[0].training_steps, int64_t(1000));
        QCOMPARE(rows[1].training_steps, int64_t(0));
        QCOMPARE(rows[0].modules, int64_t(16));
        QCOMPARE(rows[1].modules, int64_t(5));  // wo in 2 encoder + 3 decoder blocks

        QCOMPARE(library.find("beta").settings.target_regex, regex.target_regex);
        expectError([&] { library.find("zeta"); }, {"no expert named 'zeta'", "alpha, beta, gamma"});
        int64_t bytes = 0;
        for (const LoraExpert& e : library.experts()) bytes += e.parameterBytes();
        QCOMPARE(library.parameterBytes(), bytes);
        QCOMPARE(library.parameterBytes(), int64_t((16 * 288 + 16 * 256 + 5 * (4 * 48 + 32 * 4)) * 4));
    }

    void libraryOfDifferentBaseModelsIsRefused() {
        const T5Config base = tinyConfig({});
        const fs::path dir = fresh("mixed");
        saveLoraExpert(trainedExpert("a", qvSettings("t5-small"), base, 1, false), dir / "a");
        saveLoraExpert(trainedExpert("b", qvSettings(""), base, 1, false),
                       dir / "b");  // unknown: no conflict
        saveLoraExpert(trainedExpert("c", qvSettings("t5-base"), base, 1, false), dir / "c");
        expectError([&] { ExpertLibrary::open(dir, base); },
                    {QString::fromStdString(dir.string()), "'a' (base model 't5-small')",
                     "'c' (base model 't5-base')", "different base models"});
    }

    void libraryRefusals() {
        const T5Config base = tinyConfig({});
        const fs::path empty = fresh("empty");
        fs::create_directories(empty / "not-an-expert");
        expectError([&] { ExpertLibrary::open(empty, base); },
                    {QString::fromStdString(empty.string()),
                     "no expert folders (sub-folders with adapter_config.json)"});
        expectError([&] { ExpertLibrary::open(empty / "absent", base); }, {"absent", "not a folder"});

        const fs::path dir = fresh("one-bad");
        saveLoraExpert(trainedExpert("good", qvSettings(), base, 1, false), dir / "good");
        saveLoraExpert(trainedExpert("bad", qvSettings(), base, 2, false), dir / "bad");
        editJson(dir / "bad" / "adapter_config.json", [](json& j) { j["use_dora"] = true; });
        expectError([&] { ExpertLibrary::open(dir, base); },
                    {"expert 'bad' cannot be loaded", "use_dora is true"});
    }
};

QTEST_GUILESS_MAIN(ExpertsTest)
#include "test_experts.moc"
