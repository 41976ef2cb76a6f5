// `phatgoose cluster`: gate training and evaluation grids as Slurm job arrays (backend/cluster). Submitting
// writes a run folder and calls sbatch; every array task runs `phatgoose cluster run-task`, which runs one
// ordinary command into its own task folder; `status`, `cancel` and `collect` follow and bring it home.
#include <iomanip>
#include <iostream>
#include <ostream>
#include <set>
#include <sstream>

#include "cli/cli.h"
#include "cli/command.h"
#include "cluster/cluster_collect.h"
#include "cluster/cluster_run.h"
#include "error.h"
#include "experts/expert_library.h"
#include "model/t5_config.h"
#include "store/workspace.h"
#include "training/training_session.h"
#include "version.h"

namespace phatgoose {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Options a task passes on to `train-gate` as given (the preset and the settings over it).
const char* const kGateOptions[] = {"preset", "steps", "lr", "batch", "accum", "seed", "dropout"};

std::string absolute(const std::string& path) {
    return fs::absolute(path).lexically_normal().string();
}

// The program every array task runs: --phatgoose, else this program when it is `phatgoose`, else the
// `phatgoose` beside it.
std::string phatgooseProgram(const CommandContext& ctx) {
    if (ctx.parser.isSet("phatgoose")) return absolute(ctx.value("phatgoose"));
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (self.filename() == "phatgoose") return self.string();
    const fs::path beside = self.parent_path() / "phatgoose";
    if (fs::exists(beside)) return beside.string();
    throw UsageError("cannot tell where the phatgoose program is; pass --phatgoose PATH");
}

SlurmOptions slurmOptions(const CommandContext& ctx) {
    return {ctx.value("partition"),    ctx.value("time"),
            ctx.value("mem"),          ctx.value("account"),
            ctx.value("extra-sbatch"), ctx.parser.isSet("cpus") ? ctx.integer("cpus", 1) : 0};
}

std::vector<ClusterTask> gateTasks(const CommandContext& ctx, const fs::path& run_dir, json& settings) {
    const std::string model = absolute(ctx.required("model", "DIR"));
    const std::string experts_dir = absolute(ctx.required("experts", "LIBRARY"));
    const T5Config config = T5Config::fromFile(fs::path(model) / "config.json");
    const ExpertLibrary library = ExpertLibrary::open(experts_dir, config);
    std::set<std::string> only;
    for (const QString& n : ctx.parser.values("only").join(',').split(',', Qt::SkipEmptyParts))
        only.insert(n.trimmed().toStdString());
    for (const std::string& n : only)
        if (!std::any_of(library.experts().begin(), library.experts().end(),
                         [&](const LoraExpert& e) { return e.name == n; }))
            throw Error("--only: the library " + experts_dir + " has no expert '" + n + "'");
    const fs::path root = fs::path(experts_dir).parent_path();
    std::optional<Workspace> workspace;
    if (fs::is_regular_file(root / "workspace.json")) workspace = openWorkspace(root);
    settings = {{"model", model}, {"experts", experts_dir}};
    std::vector<ClusterTask> tasks;
    for (const LoraExpert& e : library.experts()) {
        if (!only.empty() && !only.count(e.name)) continue;
        const std::string data =
            ctx.parser.isSet("data")
                ? absolute(ctx.value("data"))
                : absolute(gateTrainingData(e, workspace ? &*workspace : nullptr).string());
        const fs::path staging = run_dir / "tasks" / std::to_string(tasks.size()) / "out" / e.name;
        ClusterTask t{
            e.name,
            {"train-gate", "--model", model, "--expert", staging.string(), "--data", data, "--overwrite"}};
        for (const char* option : kGateOptions)
            if (ctx.parser.isSet(option))
                t.args.insert(t.args.end(), {std::string("--") + option, ctx.value(option)});
        tasks.push_back(std::move(t));
    }
    for (const char* option : kGateOptions)
        if (ctx.parser.isSet(option)) settings[option] = ctx.value(option);
    return tasks;
}

std::vector<ClusterTask> evalTasks(const CommandContext& ctx, const fs::path& run_dir, json& settings) {
    const std::string model = absolute(ctx.required("model", "DIR"));
    const std::string experts_dir = absolute(ctx.required("experts", "LIBRARY"));
    const std::string top_k = ctx.value("top-k");
    ctx.integer("top-k", 1);
    QStringList data = ctx.parser.values("data");
    if (data.isEmpty()) throw UsageError("--data FILE is required (repeat it for several datasets)");
    const QStringList methods = ctx.parser.value("methods").split(',', Qt::SkipEmptyParts);
    if (methods.isEmpty()) throw UsageError("--methods LIST is required");
    std::vector<std::string> files;
    for (const QString& f : data) {
        if (!fs::is_regular_file(f.toStdString())) throw Error(f.toStdString() + ": no such dataset file");
        files.push_back(absolute(f.toStdString()));
    }
    settings = {{"model", model}, {"experts", experts_dir}, {"top_k", std::stoll(top_k)}, {"data", files}};
    std::vector<ClusterTask> tasks;
    for (const QString& method : methods)
        for (const std::string& file : files) {
            const fs::path db = run_dir / "tasks" / std::to_string(tasks.size()) / "out" / "cell.sqlite";
            tasks.push_back({method.trimmed().toStdString() + " on " + fs::path(file).stem().string(),
                             {"eval", "--model", model, "--experts", experts_dir, "--data", file, "--methods",
                              method.trimmed().toStdString(), "--top-k", top_k, "--db", db.string()}});
            settings["methods"].push_back(method.trimmed().toStdString());
        }
    return tasks;
}

void submit(CommandContext& ctx, const std::string& kind) {
    const fs::path run_dir = fs::absolute(ctx.required("run-dir", "DIR")).lexically_normal();
    ClusterManifest m{.kind = kind,
                      .phatgoose = phatgooseProgram(ctx),
                      .settings = {},
                      .slurm = slurmOptions(ctx),
                      .tasks = {},
                      .job_id = {}};
    m.tasks = kind == "eval" ? evalTasks(ctx, run_dir, m.settings) : gateTasks(ctx, run_dir, m.settings);
    if (m.tasks.empty()) throw Error("nothing to run: no expert matches --only");
    if (ctx.parser.isSet("dry-run")) {
        ctx.out << ClusterRun::preview(run_dir, m).script();
        return;
    }
    ClusterRun run = ClusterRun::create(run_dir, m);
    const std::string job = run.submit();
    ctx.out << "Submitted job " << job << ": " << m.tasks.size() << " array task(s), run folder "
            << run_dir.string() << "\n";
}

void status(CommandContext& ctx) {
    const ClusterRun run = ClusterRun::open(ctx.required("run-dir", "DIR"));
    const std::vector<TaskStatus> statuses = run.statuses();
    ctx.out << "job " << (run.manifest().job_id.empty() ? "(not submitted)" : run.manifest().job_id) << ", "
            << run.manifest().kind << ", " << statuses.size() << " task(s)\n";
    for (size_t i = 0; i < statuses.size(); ++i) {
        ctx.out << std::setw(4) << i << "  " << std::left << std::setw(10) << taskStateName(statuses[i].state)
                << std::right << run.manifest().tasks[i].name << "\n";
        if (statuses[i].state == TaskState::Failed) {
            std::istringstream tail(statuses[i].log_tail);
            for (std::string line; std::getline(tail, line);) ctx.out << "        | " << line << "\n";
        }
    }
}

void collect(CommandContext& ctx) {
    const ClusterRun run = ClusterRun::open(ctx.required("run-dir", "DIR"));
    const CollectReport r = collectRun(run, ctx.required("db", "FILE"), PHATGOOSE_VERSION);
    ctx.out << "collected " << r.collected << " task(s) now, " << r.already << " before; " << r.waiting
            << " still pending or running, " << r.failed << " failed or cancelled";
    if (run.manifest().kind == "eval") ctx.out << "; eval run " << r.eval_run << " is " << r.eval_status;
    ctx.out << "\n";
}

// The array task: a staging copy of the expert (gates), then the task's own command.
void runTask(CommandContext& ctx) {
    const ClusterRun run = ClusterRun::open(ctx.required("run-dir", "DIR"));
    const size_t index = size_t(ctx.integer("task", 0));
    const int code = run.runTask(index, [&](const ClusterTask& task) {
        if (run.manifest().kind == "train-gates") {
            const fs::path staging = run.outputDir(index) / task.name;
            fs::remove_all(staging);
            fs::copy(fs::path(run.manifest().settings.at("experts").get<std::string>()) / task.name, staging,
                     fs::copy_options::recursive);
        }
        return runCli(task.args, std::cout, std::cerr);
    });
    if (code != 0)
        throw Error("task " + std::to_string(index) + " failed with exit code " + std::to_string(code));
}

void runCluster(CommandContext& ctx) {
    const QStringList args = ctx.parser.positionalArguments();
    const std::string what = args.isEmpty() ? "" : args.front().toStdString();
    if (what == "train-gates" || what == "eval") return submit(ctx, what);
    if (what == "status") return status(ctx);
    if (what == "cancel") {
        ClusterRun run = ClusterRun::open(ctx.required("run-dir", "DIR"));
        run.cancel();
        ctx.out << "cancelled job " << run.manifest().job_id << "\n";
        return;
    }
    if (what == "collect") return collect(ctx);
    if (what == "run-task") return runTask(ctx);
    throw UsageError("expected one of train-gates, eval, status, cancel, collect (got '" + what + "')");
}

void declareCluster(QCommandLineParser& p) {
    p.addPositionalArgument("ACTION",
                            "train-gates | eval | status | cancel | collect (run-task: inside Slurm).");
    p.addOption({"run-dir", "The run folder (on a filesystem every node sees).", "DIR"});
    p.addOption({"model", "Base model folder.", "DIR"});
    p.addOption({"experts", "Expert library folder.", "LIBRARY"});
    p.addOption({"only", "train-gates: only these experts (comma-separated).", "NAMES"});
    p.addOption({"data",
                 "eval: a dataset (repeat); train-gates: one file for every gate (default: each "
                 "expert's own training data).",
                 "FILE"});
    p.addOption({"methods", "eval: the methods, as `phatgoose eval --methods` takes them.", "LIST"});
    p.addOption({"top-k", "eval: k for the token-wise methods (default 2).", "K", "2"});
    for (const char* option : kGateOptions)
        p.addOption({option, QString("train-gates: passed to train-gate as --%1.").arg(option), "VALUE"});
    p.addOption({"partition", "sbatch --partition.", "P"});
    p.addOption({"time", "sbatch --time.", "T"});
    p.addOption({"cpus", "sbatch --cpus-per-task.", "N"});
    p.addOption({"mem", "sbatch --mem.", "M"});
    p.addOption({"account", "sbatch --account.", "A"});
    p.addOption({"extra-sbatch", "More sbatch options, space-separated, e.g. \"--qos=short\".", "OPTIONS"});
    p.addOption({"dry-run", "Print the sbatch script; write and submit nothing."});
    p.addOption({"phatgoose", "The program the array tasks run (default: this one).", "PATH"});
    p.addOption({"db", "collect: the workspace's results database.", "FILE"});
    p.addOption({"task", "run-task: the array index.", "I"});
}

}  // namespace

std::vector<Command> clusterCommands() {
    return {{"cluster",
             "Gate training and evaluation grids as Slurm job arrays: submit, status, cancel, collect.",
             declareCluster, runCluster}};
}

}  // namespace phatgoose
