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
#include "cluster/cluster_plans.h"
#include "cluster/cluster_run.h"
#include "error.h"
#include "version.h"

namespace phatgoose {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Options a task passes on to `train-gate` as given (the preset and the settings over it).
const char* const kGateOptions[] = {"preset", "steps", "lr", "batch", "accum", "seed", "dropout"};

std::string phatgooseProgram(const CommandContext& ctx) {
    if (ctx.parser.isSet("phatgoose"))
        return fs::absolute(ctx.value("phatgoose")).lexically_normal().string();
    const std::string beside = phatgooseBesideThisProgram();
    if (beside.empty()) throw UsageError("cannot tell where the phatgoose program is; pass --phatgoose PATH");
    return beside;
}

SlurmOptions slurmOptions(const CommandContext& ctx) {
    return {ctx.value("partition"),    ctx.value("time"),
            ctx.value("mem"),          ctx.value("account"),
            ctx.value("extra-sbatch"), ctx.parser.isSet("cpus") ? ctx.integer("cpus", 1) : 0};
}

std::vector<std::string> strings(const QStringList& list) {
    std::vector<std::string> out;
    for (const QString& s : list)
        if (!s.trimmed().isEmpty()) out.push_back(s.trimmed().toStdString());
    return out;
}

ClusterManifest manifest(const CommandContext& ctx, const std::string& kind, const fs::path& run_dir) {
    const std::string model = ctx.required("model", "DIR"), experts = ctx.required("experts", "LIBRARY");
    if (kind == "eval") {
        if (!ctx.parser.isSet("data"))
            throw UsageError("--data FILE is required (repeat it for several datasets)");
        if (!ctx.parser.isSet("methods")) throw UsageError("--methods LIST is required");
        const EvalGridPlan plan{model, experts, strings(ctx.parser.values("data")),
                                strings(ctx.parser.value("methods").split(',')), ctx.integer("top-k", 1)};
        return evalGridManifest(plan, run_dir, phatgooseProgram(ctx), slurmOptions(ctx));
    }
    GateArrayPlan plan{
        model, experts, strings(ctx.parser.values("only").join(',').split(',')), ctx.value("data"), {}};
    for (const char* option : kGateOptions)
        if (ctx.parser.isSet(option)) plan.options.emplace_back(option, ctx.value(option));
    return gateArrayManifest(plan, run_dir, phatgooseProgram(ctx), slurmOptions(ctx));
}

void submit(CommandContext& ctx, const std::string& kind) {
    const fs::path run_dir = fs::absolute(ctx.required("run-dir", "DIR")).lexically_normal();
    const ClusterManifest m = manifest(ctx, kind, run_dir);
    if (ctx.parser.isSet("dry-run")) {
        ctx.out << ClusterRun::preview(run_dir, m).script();
        return;
    }
    const ClusterRun run = ClusterRun::createAndSubmit(run_dir, m);
    const std::string& job = run.manifest().job_id;
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
