#pragma once
// A LoRA expert: low-rank deltas on some of a T5's linear layers (y = W x + s * B (A x)), stored as a
// Hugging Face PEFT adapter folder, plus its optional PHATGOOSE gate (one vector per LoRA module).
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experts/lora_settings.h"
#include "model/safetensors.h"
#include "model/t5_config.h"

namespace phatgoose {

// Which of the model's linear layers these settings target. Throws when none match.
std::vector<LinearSite> resolveTargets(const LoraSettings& settings, const T5Config& config);

struct LoraModule {
    torch::Tensor A;     // [r, d_in]
    torch::Tensor B;     // [d_out, r]
    torch::Tensor gate;  // [d_in], undefined when the expert has no gate
};

// What gate training recorded beside the gate (phatgoose_gate.json).
struct GateRecord {
    int64_t steps = 0;
    double learning_rate = 0.0;
    int64_t batch_size = 0;
    uint64_t seed = 0;
    double final_loss = 0.0;
    std::string dataset;
    std::vector<double> loss_curve;
};

// What expert training recorded (training_summary.json, optional).
struct TrainingRecord {
    int64_t steps = 0;
    double final_loss = 0.0;
    double best_valid_loss = 0.0;
    std::string dataset;
    std::string task;
    std::vector<double> loss_curve;
};

struct LoraExpert {
    std::string name;  // the folder name
    std::filesystem::path dir;
    LoraSettings settings;
    std::map<std::string, LoraModule>
        modules;  // by module path, e.g. "decoder.block.1.layer.2.DenseReluDense.wo"
    std::optional<GateRecord> gate_record;
    std::optional<TrainingRecord> training_record;

    double scale() const { return settings.scale(); }
    bool hasGate() const;  // every module has a gate vector
    int64_t parameterBytes() const;
};

// Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors, or, from older PEFT
// versions, adapter_model.bin: a torch.save state dict read without executing anything) and, when present,
// its gate (phatgoose_gate.safetensors, and phatgoose_gate.json when present) and training summary.
// Everything is checked against `base`: every module exists with the right shapes, the rank is positive, no
// NaN or Inf in the weights, no unsupported PEFT feature (DoRA, bias training, modules_to_save, rank/alpha
// patterns, fan_in_fan_out...). Errors name the file and the problem.
LoraExpert loadLoraExpert(const std::filesystem::path& dir, const T5Config& base);

// A fresh expert: A ~ small random (Kaiming-uniform as PEFT), B = 0, on the resolved targets.
LoraExpert initLoraExpert(const std::string& name, const LoraSettings& settings, const T5Config& base,
                          uint64_t seed);

// Writes the expert folder: adapter_config.json + adapter_model.safetensors (PEFT key names), and the gate
// and records that are present. The expert is checked before anything is written; the folder is built
// whole beside `dir` and swapped in, so a failure leaves `dir` as it was and a success leaves exactly the
// expert's files (none of an earlier save's gate or summary). An existing `dir` is replaced only when it is
// empty or an expert folder holding nothing but these files; anything else is refused by name.
// The weights and gates are stored as `dtype` (F32, or BF16/F16 to halve the folder; compute stays float32).
void saveLoraExpert(const LoraExpert& expert, const std::filesystem::path& dir, DType dtype = DType::F32);
// Writes only phatgoose_gate.safetensors (keys "<module path>.gate", [d_in]) and phatgoose_gate.json (when
// gate_record is set; else a stale one is removed) into an existing expert folder, both written before
// either replaces the old one. Throws when a module has no gate.
void saveGate(const LoraExpert& expert, const std::filesystem::path& dir);

// The PEFT key of a module's A or B: "base_model.model.<path>.lora_A.weight".
std::string peftKey(const std::string& module_path, char which);

}  // namespace phatgoose
