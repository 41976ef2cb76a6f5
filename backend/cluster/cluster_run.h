#pragma once
// A cluster run: work that many machines share through one folder (docs/ARCHITECTURE.md, "Clusters"). The
// run folder holds a manifest (the tasks and their settings), the sbatch script made from it (one array task
// per task), and per task a folder with its status file, its log and its output. Array tasks write only
// inside their own task folder; the workspace's database and library are written by `collect` alone, on the
// machine the user runs it on.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace phatgoose {

struct SlurmOptions {
    std::string partition, time, mem, account, extra_sbatch;  // empty: Slurm's default
    int64_t cpus = 0;                                         // 0: Slurm's default
};

struct ClusterTask {
    std::string name;               // the gate's expert, or "method on dataset"
    std::vector<std::string> args;  // the `phatgoose` command line the array task runs
};

struct ClusterManifest {
    std::string kind;         // "train-gates" or "eval"
    std::string phatgoose;    // the program every array task runs (absolute path)
    nlohmann::json settings;  // what the run was asked with; collect records it with the results
    SlurmOptions slurm;
    std::vector<ClusterTask> tasks;
    std::string job_id;  // Slurm's, once submitted
};

enum class TaskState { Pending, Running, Done, Failed, Cancelled };
std::string taskStateName(TaskState state);

struct TaskStatus {
    TaskState state = TaskState::Pending;
    int exit_code = 0;
    std::string log_tail;  // the last lines of a failed task's log
};

class ClusterRun {
public:
    // A new run folder (refused when it exists and is not empty) with the manifest and the script.
    static ClusterRun create(const std::filesystem::path& dir, const ClusterManifest& manifest);
    // create() then submit(); a submission Slurm refuses leaves no run folder behind.
    static ClusterRun createAndSubmit(const std::filesystem::path& dir, const ClusterManifest& manifest);
    // The run as create() would write it, written nowhere (for --dry-run).
    static ClusterRun preview(const std::filesystem::path& dir, const ClusterManifest& manifest);
    // Throws phatgoose::Error naming the folder when it holds no valid manifest.
    static ClusterRun open(const std::filesystem::path& dir);

    const std::filesystem::path& dir() const { return dir_; }
    const ClusterManifest& manifest() const { return manifest_; }
    std::filesystem::path taskDir(size_t task) const;
    std::filesystem::path outputDir(size_t task) const { return taskDir(task) / "out"; }
    std::filesystem::path scriptPath() const { return dir_ / "submit.sbatch"; }

    // The sbatch script: readable, commented, one array task per manifest task.
    std::string script() const;
    // `sbatch --parsable` on the script; records and returns the job id.
    std::string submit();
    // `scancel` on the job; records that the run was cancelled.
    void cancel();

    // Every task's state: from its status file when it has finished or started, else from squeue (pending or
    // running while Slurm lists it), else pending, or cancelled once the run was cancelled.
    std::vector<TaskStatus> statuses() const;

    // The array task's side: marks the task running, runs `work` (which returns an exit code) and writes the
    // final status atomically. Returns the exit code.
    int runTask(size_t task, const std::function<int(const ClusterTask&)>& work) const;

private:
    ClusterRun(std::filesystem::path dir, ClusterManifest manifest);
    void save() const;
    std::filesystem::path dir_;
    ClusterManifest manifest_;
};

// squeue's view of an array job: task index -> "PENDING", "RUNNING", ...; empty when squeue is missing or
// the job is no longer listed.
std::map<size_t, std::string> squeueStates(const std::string& job_id);

}  // namespace phatgoose
