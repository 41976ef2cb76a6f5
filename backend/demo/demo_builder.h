#pragma once
// `phatgoose demo build`: the demo workspace made from nothing (docs/ARCHITECTURE.md, "The demo workspace").
// The synthetic task suite is drawn, a sentencepiece tokenizer is trained on its text, a tiny T5 is
// pre-trained by span corruption on the held-in tasks' text, one LoRA expert and one PHATGOOSE gate are
// trained per held-in task, a multitask LoRA is trained on all held-in tasks at once, and every routing
// method is evaluated on every task into the workspace's database. Held-out tasks are candidates first: the
// base model and each skill expert alone are evaluated on them (a run of its own), and only those the rule
// (held_out_rule.h) keeps stay in the workspace, before any router is run on them. Everything happens in a
// fresh, uniquely named folder beside DIR (".DIR.tmp-partial-XXXXXX"), swapped in as DIR at the end, so a
// failed or cancelled build leaves nothing half-made and an existing DIR untouched.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "demo/held_out_rule.h"
#include "model/t5_config.h"

namespace phatgoose {

// How big the demo is. full() fits the 20-minute budget on a 2-core machine; quick() runs the whole
// pipeline in about a minute for the tests, with results that mean nothing.
struct DemoScale {
    T5Config model;
    int vocab_pieces = 0;  // sentencepiece pieces, before the sentinels
    int extra_ids = 20;
    int64_t train_per_task = 0, valid_per_task = 0, test_per_task = 0;
    int64_t pretrain_steps = 0, pretrain_batch = 0;
    double pretrain_lr = 0.0;
    int64_t expert_steps = 0, multitask_steps = 0, gate_steps = 0, batch = 0;
    double expert_lr = 0.0;
    int64_t lora_rank = 0;
    double lora_alpha = 0.0;
    int64_t top_k = 2;
    HeldOutRule rule;  // which held-out candidates the workspace keeps

    static DemoScale full();
    static DemoScale quick();
};

struct DemoBuildOptions {
    std::filesystem::path out;
    DemoScale scale = DemoScale::full();
    uint64_t seed = 7;
    bool replace = false;  // replace an existing DIR, only if it is a workspace (else refused)
    std::string version;   // recorded in the database's runs
};

struct DemoProgress {
    std::string stage;  // "data", "tokenizer", "pre-training", "experts", "gates", "multitask",
                        // "held-out rule", "evaluation"
    std::string item;   // the task or method at work, when there is one
    int64_t done = 0, total = 0;
    double loss = 0.0;  // the latest training loss, where one applies
};

struct DemoStageTime {
    std::string stage;
    double seconds = 0.0;
};

struct DemoBuildReport {
    std::filesystem::path workspace;
    std::vector<HeldOutVerdict> held_out;  // every candidate, kept or not
    std::vector<DemoStageTime> stages;
    double seconds = 0.0;
};

// Throws phatgoose::Error (TrainingCancelled when `cancel` is set) after removing its partial folder.
DemoBuildReport buildDemoWorkspace(const DemoBuildOptions& options,
                                   const std::function<void(const DemoProgress&)>& progress = {},
                                   const std::atomic<bool>* cancel = nullptr);

}  // namespace phatgoose
