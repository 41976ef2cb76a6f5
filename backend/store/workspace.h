#pragma once
// A workspace: the folder a researcher works in (docs/ARCHITECTURE.md, "The demo workspace") — a base model
// in Hugging Face layout, an expert library, task datasets, an optional multitask baseline adapter, and the
// results database. `workspace.json` describes it; a folder without one still opens when it has model/ and
// experts/. No LibTorch, no Qt: the CLI, the GUI and the demo builder all read it.
//
//   DIR/workspace.json
//   DIR/model/                    config.json, model.safetensors, spiece.model
//   DIR/experts/<task>/           adapter_config.json, adapter_model.safetensors, phatgoose_gate.*
//   DIR/baselines/multitask/      one LoRA trained on every held-in task at once (optional)
//   DIR/data/{train,valid,test}/<task>.jsonl
//   DIR/workbench.sqlite
#include <filesystem>
#include <string>
#include <vector>

namespace phatgoose {

enum class TaskRole { HeldIn, HeldOut };
std::string taskRoleName(TaskRole role);  // "held-in", "held-out"

struct WorkspaceTask {
    std::string name;
    TaskRole role = TaskRole::HeldIn;
    bool multiple_choice = false;  // rank classification over `choices`; else generation (exact match)
    std::string description;       // one line for people
    std::string example_prompt;    // a typical input, for the probe view
    std::filesystem::path train, valid, test;  // absolute; empty where the split does not exist
};

struct Workspace {
    std::filesystem::path root;
    std::string name;
    std::filesystem::path model_dir, experts_dir, database;
    std::filesystem::path multitask_dir;  // empty when the workspace has no multitask baseline
    std::vector<WorkspaceTask> tasks;

    const WorkspaceTask* task(const std::string& name) const;  // nullptr when unknown
    std::vector<std::filesystem::path> testSets() const;       // every task's test split, in task order
    std::vector<std::filesystem::path> testSets(TaskRole role) const;
};

// The layout above, rooted at `dir` (nothing is read or created).
Workspace defaultWorkspace(const std::filesystem::path& dir);

// Opens `dir`: reads workspace.json when present (else the default layout, with tasks found as
// data/test/*.jsonl), and checks that the model folder and the expert library exist. Throws
// phatgoose::Error naming the folder or file and what is wrong with it.
Workspace openWorkspace(const std::filesystem::path& dir);

// Writes DIR/workspace.json atomically, with paths relative to the root.
void saveWorkspaceManifest(const Workspace& workspace);

}  // namespace phatgoose
