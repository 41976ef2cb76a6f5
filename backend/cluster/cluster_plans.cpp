#include "cluster/cluster_plans.h"

#include <algorithm>
#include <optional>

#include "error.h"
#include "experts/expert_library.h"
#include "model/t5_config.h"
#include "store/workspace.h"
#include "training/training_session.h"

namespace phatgoose {
namespace fs = std::filesystem;

namespace {

std::string absolute(const std::string& path) {
    return fs::absolute(path).lexically_normal().string();
}

fs::path taskOutput(const fs::path& run_dir, size_t task) {
    return run_dir / "tasks" / std::to_string(task) / "out";
}

}  // namespace

ClusterManifest gateArrayManifest(const GateArrayPlan& plan, const fs::path& run_dir,
                                  const std::string& phatgoose, const SlurmOptions& slurm) {
    const std::string model = absolute(plan.model), experts_dir = absolute(plan.experts);
    const T5Config config = T5Config::fromFile(fs::path(model) / "config.json");
    const ExpertLibrary library = ExpertLibrary::open(experts_dir, config);
    for (const std::string& n : plan.only)
        if (std::none_of(library.experts().begin(), library.experts().end(),
                         [&](const LoraExpert& e) { return e.name == n; }))
            throw Error("the library " + experts_dir + " has no expert '" + n + "'");
    const fs::path root = fs::path(experts_dir).parent_path();
    std::optional<Workspace> workspace;
    if (fs::is_regular_file(root / "workspace.json")) workspace = openWorkspace(root);
    ClusterManifest m{.kind = "train-gates",
                      .phatgoose = phatgoose,
                      .settings = {{"model", model}, {"experts", experts_dir}},
                      .slurm = slurm,
                      .tasks = {},
                      .job_id = {}};
    for (const LoraExpert& e : library.experts()) {
        if (!plan.only.empty() && std::find(plan.only.begin(), plan.only.end(), e.name) == plan.only.end())
            continue;
        const std::string data =
            !plan.data.empty() ? absolute(plan.data)
                               : absolute(gateTrainingData(e, workspace ? &*workspace : nullptr).string());
        const fs::path staging = taskOutput(run_dir, m.tasks.size()) / e.name;
        ClusterTask t{
            e.name,
            {"train-gate", "--model", model, "--expert", staging.string(), "--data", data, "--overwrite"}};
        for (const auto& [option, value] : plan.options) t.args.insert(t.args.end(), {"--" + option, value});
        m.tasks.push_back(std::move(t));
    }
    for (const auto& [option, value] : plan.options) m.settings[option] = value;
    if (m.tasks.empty()) throw Error("nothing to run: the library has no expert to train a gate for");
    return m;
}

ClusterManifest evalGridManifest(const EvalGridPlan& plan, const fs::path& run_dir,
                                 const std::string& phatgoose, const SlurmOptions& slurm) {
    if (plan.data.empty()) throw Error("an evaluation grid needs at least one dataset");
    if (plan.methods.empty()) throw Error("an evaluation grid needs at least one method");
    const std::string model = absolute(plan.model), experts_dir = absolute(plan.experts);
    std::vector<std::string> files;
    for (const std::string& f : plan.data) {
        if (!fs::is_regular_file(f)) throw Error(f + ": no such dataset file");
        files.push_back(absolute(f));
    }
    ClusterManifest m{
        .kind = "eval",
        .phatgoose = phatgoose,
        .settings = {{"model", model}, {"experts", experts_dir}, {"top_k", plan.top_k}, {"data", files}},
        .slurm = slurm,
        .tasks = {},
        .job_id = {}};
    for (const std::string& method : plan.methods) {
        m.settings["methods"].push_back(method);
        for (const std::string& file : files) {
            const fs::path db = taskOutput(run_dir, m.tasks.size()) / "cell.sqlite";
            m.tasks.push_back(
                {method + " on " + fs::path(file).stem().string(),
                 {"eval", "--model", model, "--experts", experts_dir, "--data", file, "--methods", method,
                  "--top-k", std::to_string(plan.top_k), "--db", db.string()}});
        }
    }
    return m;
}

std::string phatgooseBesideThisProgram() {
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    if (self.filename() == "phatgoose") return self.string();
    const fs::path beside = self.parent_path() / "phatgoose";
    return fs::exists(beside) ? beside.string() : std::string();
}

}  // namespace phatgoose
