#include "store/workspace.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "atomic_file.h"
#include "error.h"

namespace phatgoose {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = "workspace.json";
constexpr const char* kFormat = "phatgoose-workspace";
constexpr int kFormatVersion = 1;

TaskRole parseRole(const std::string& text, const fs::path& file) {
    if (text == "held-in") return TaskRole::HeldIn;
    if (text == "held-out") return TaskRole::HeldOut;
    throw Error(file.string() + ": task role '" + text + "' is neither 'held-in' nor 'held-out'");
}

// A manifest path: relative to the root, and never leaving it.
fs::path resolved(const fs::path& root, const std::string& relative, const fs::path& file) {
    if (relative.empty()) return {};
    const fs::path p(relative);
    if (p.is_absolute() || relative.find("..") != std::string::npos)
        throw Error(file.string() + ": path '" + relative + "' must stay inside the workspace");
    return root / p;
}

std::string relativeTo(const fs::path& root, const fs::path& p) {
    return p.empty() ? std::string() : p.lexically_relative(root).generic_string();
}

void splitIfPresent(const fs::path& root, const std::string& split, const std::string& task, fs::path& out) {
    const fs::path p = root / "data" / split / (task + ".jsonl");
    if (fs::exists(p)) out = p;
}

// Tasks of a workspace without a manifest: one per data/test/*.jsonl, roles unknown (held-in when an
// expert of that name exists).
std::vector<WorkspaceTask> discoverTasks(const Workspace& ws) {
    std::vector<WorkspaceTask> tasks;
    const fs::path test_dir = ws.root / "data" / "test";
    if (!fs::is_directory(test_dir)) return tasks;
    for (const auto& entry : fs::directory_iterator(test_dir)) {
        if (entry.path().extension() != ".jsonl") continue;
        WorkspaceTask t;
        t.name = entry.path().stem().string();
        t.role = fs::exists(ws.experts_dir / t.name) ? TaskRole::HeldIn : TaskRole::HeldOut;
        splitIfPresent(ws.root, "train", t.name, t.train);
        splitIfPresent(ws.root, "valid", t.name, t.valid);
        t.test = entry.path();
        tasks.push_back(t);
    }
    std::sort(tasks.begin(), tasks.end(),
              [](const WorkspaceTask& a, const WorkspaceTask& b) { return a.name < b.name; });
    return tasks;
}

void readManifest(Workspace& ws, const fs::path& file) {
    std::ifstream in(file);
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) throw Error(file.string() + ": not a JSON object");
    try {
        if (j.value("format", std::string()) != kFormat)
            throw Error(file.string() + ": not a PHATGOOSE workspace manifest (\"format\" is not \"" +
                        kFormat + "\")");
        if (j.value("version", 0) > kFormatVersion)
            throw Error(file.string() + ": written by a newer version of the workbench (format version " +
                        std::to_string(j.value("version", 0)) + ")");
        ws.name = j.value("name", ws.name);
        ws.model_dir = resolved(ws.root, j.value("model", "model"), file);
        ws.experts_dir = resolved(ws.root, j.value("experts", "experts"), file);
        ws.database = resolved(ws.root, j.value("database", "workbench.sqlite"), file);
        ws.multitask_dir = resolved(ws.root, j.value("multitask", ""), file);
        for (const json& t : j.value("tasks", json::array())) {
            WorkspaceTask task;
            task.name = t.at("name").get<std::string>();
            task.role = parseRole(t.value("role", "held-in"), file);
            task.multiple_choice = t.value("multiple_choice", false);
            task.description = t.value("description", "");
            task.example_prompt = t.value("example_prompt", "");
            task.train = resolved(ws.root, t.value("train", ""), file);
            task.valid = resolved(ws.root, t.value("valid", ""), file);
            task.test = resolved(ws.root, t.value("test", ""), file);
            ws.tasks.push_back(task);
        }
    } catch (const json::exception& e) {
        throw Error(file.string() + ": " + e.what());
    }
}

}  // namespace

std::string taskRoleName(TaskRole role) {
    return role == TaskRole::HeldIn ? "held-in" : "held-out";
}

const WorkspaceTask* Workspace::task(const std::string& wanted) const {
    for (const WorkspaceTask& t : tasks)
        if (t.name == wanted) return &t;
    return nullptr;
}

std::vector<fs::path> Workspace::testSets() const {
    std::vector<fs::path> out;
    for (const WorkspaceTask& t : tasks)
        if (!t.test.empty()) out.push_back(t.test);
    return out;
}

std::vector<fs::path> Workspace::testSets(TaskRole role) const {
    std::vector<fs::path> out;
    for (const WorkspaceTask& t : tasks)
        if (t.role == role && !t.test.empty()) out.push_back(t.test);
    return out;
}

Workspace defaultWorkspace(const fs::path& dir) {
    Workspace ws;
    ws.root = fs::absolute(dir).lexically_normal();
    ws.name = ws.root.filename().string();
    ws.model_dir = ws.root / "model";
    ws.experts_dir = ws.root / "experts";
    ws.database = ws.root / "workbench.sqlite";
    return ws;
}

namespace {

// Every path of a workspace must stay inside it once symbolic links are followed: a linked
// workbench.sqlite or model folder would make the workspace read or write somewhere else.
void checkContained(const Workspace& ws, const fs::path& p, const std::string& what) {
    if (p.empty()) return;
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(ws.root, ec);
    const fs::path real = fs::weakly_canonical(p, ec);
    if (ec) throw Error(p.string() + ": cannot resolve the " + what + " (" + ec.message() + ")");
    const fs::path inside = real.lexically_relative(root);
    if (inside.empty() || *inside.begin() == "..")
        throw Error(ws.root.string() + ": the " + what + " " + p.string() +
                    " leads outside the workspace (to " + real.string() +
                    "); a workspace keeps everything inside its folder");
}

}  // namespace

Workspace openWorkspace(const fs::path& dir) {
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": no such workspace folder");
    Workspace ws = defaultWorkspace(dir);
    const fs::path manifest = ws.root / kManifest;
    if (fs::exists(manifest))
        readManifest(ws, manifest);
    else
        ws.tasks = discoverTasks(ws);
    if (!fs::exists(ws.model_dir / "config.json"))
        throw Error(ws.root.string() + ": not a workspace: no base model (" +
                    (ws.model_dir / "config.json").string() + " is missing)");
    if (!fs::is_directory(ws.experts_dir))
        throw Error(ws.root.string() + ": not a workspace: the expert library " + ws.experts_dir.string() +
                    " is missing");
    for (const WorkspaceTask& t : ws.tasks)
        for (const fs::path& p : {t.train, t.valid, t.test})
            if (!p.empty() && !fs::exists(p))
                throw Error(manifest.string() + ": task '" + t.name + "' names " + p.string() +
                            ", which does not exist");
    checkContained(ws, ws.model_dir, "model folder");
    checkContained(ws, ws.experts_dir, "expert library");
    checkContained(ws, ws.database, "results database");
    checkContained(ws, ws.multitask_dir, "multitask baseline");
    for (const WorkspaceTask& t : ws.tasks)
        for (const fs::path& p : {t.train, t.valid, t.test})
            checkContained(ws, p, "data of task '" + t.name + "'");
    return ws;
}

void saveWorkspaceManifest(const Workspace& ws) {
    json tasks = json::array();
    for (const WorkspaceTask& t : ws.tasks)
        tasks.push_back({{"name", t.name},
                         {"role", taskRoleName(t.role)},
                         {"multiple_choice", t.multiple_choice},
                         {"description", t.description},
                         {"example_prompt", t.example_prompt},
                         {"train", relativeTo(ws.root, t.train)},
                         {"valid", relativeTo(ws.root, t.valid)},
                         {"test", relativeTo(ws.root, t.test)}});
    const json j = {{"format", kFormat},
                    {"version", kFormatVersion},
                    {"name", ws.name},
                    {"model", relativeTo(ws.root, ws.model_dir)},
                    {"experts", relativeTo(ws.root, ws.experts_dir)},
                    {"database", relativeTo(ws.root, ws.database)},
                    {"multitask", relativeTo(ws.root, ws.multitask_dir)},
                    {"tasks", tasks}};
    writeFileAtomically(ws.root / kManifest, j.dump(2) + "\n");
}

}  // namespace phatgoose
