#include "cluster/cluster_run.h"

#include <QProcess>
#include <QStringList>
#include <chrono>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "error.h"

namespace phatgoose {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr char kManifest[] = "manifest.json";
constexpr char kCancelled[] = "cancelled";

std::string readText(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Single quotes for the shell: the script runs the task's arguments exactly as given.
std::string shellQuoted(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Runs a Slurm client and returns its standard output; throws naming the program and its error output.
std::string slurmClient(const QString& program, const QStringList& args, bool required = true) {
    QProcess p;
    p.start(program, args);
    if (!p.waitForStarted(10000)) {
        if (!required) return {};
        throw Error(program.toStdString() + " cannot be started (is Slurm's client installed and on PATH?)");
    }
    p.waitForFinished(60000);
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
        if (!required) return {};
        throw Error(program.toStdString() +
                    " failed: " + QString::fromUtf8(p.readAllStandardError()).trimmed().toStdString());
    }
    return QString::fromUtf8(p.readAllStandardOutput()).toStdString();
}

json manifestJson(const ClusterManifest& m) {
    json tasks = json::array();
    for (const ClusterTask& t : m.tasks) tasks.push_back({{"name", t.name}, {"args", t.args}});
    return {{"kind", m.kind},
            {"phatgoose", m.phatgoose},
            {"settings", m.settings},
            {"slurm",
             {{"partition", m.slurm.partition},
              {"time", m.slurm.time},
              {"mem", m.slurm.mem},
              {"account", m.slurm.account},
              {"extra_sbatch", m.slurm.extra_sbatch},
              {"cpus", m.slurm.cpus}}},
            {"tasks", tasks},
            {"job_id", m.job_id}};
}

ClusterManifest manifestFrom(const json& j) {
    ClusterManifest m;
    m.kind = j.at("kind").get<std::string>();
    if (m.kind != "train-gates" && m.kind != "eval") throw Error("unknown run kind '" + m.kind + "'");
    m.phatgoose = j.at("phatgoose").get<std::string>();
    m.settings = j.at("settings");
    const json& s = j.at("slurm");
    m.slurm = {s.at("partition").get<std::string>(),    s.at("time").get<std::string>(),
               s.at("mem").get<std::string>(),          s.at("account").get<std::string>(),
               s.at("extra_sbatch").get<std::string>(), s.at("cpus").get<int64_t>()};
    for (const json& t : j.at("tasks"))
        m.tasks.push_back({t.at("name").get<std::string>(), t.at("args").get<std::vector<std::string>>()});
    if (m.tasks.empty()) throw Error("the manifest lists no tasks");
    m.job_id = j.at("job_id").get<std::string>();
    return m;
}

std::string lastLines(const std::string& text, int count) {
    size_t pos = text.size();
    while (pos > 0 && text[pos - 1] == '\n') --pos;
    for (int n = 0; n < count && pos > 0; ++n) {
        pos = text.rfind('\n', pos - 1);
        if (pos == std::string::npos) return text;
    }
    return text.substr(pos + 1);
}

std::string isoNow() {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return text;
}

}  // namespace

std::string taskStateName(TaskState state) {
    switch (state) {
        case TaskState::Pending:
            return "pending";
        case TaskState::Running:
            return "running";
        case TaskState::Done:
            return "done";
        case TaskState::Failed:
            return "failed";
        case TaskState::Cancelled:
            return "cancelled";
    }
    return "?";
}

ClusterRun::ClusterRun(fs::path dir, ClusterManifest manifest)
    : dir_(std::move(dir)), manifest_(std::move(manifest)) {}

ClusterRun ClusterRun::create(const fs::path& dir, const ClusterManifest& manifest) {
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
        throw Error(dir.string() + ": already exists and is not empty (choose a new run folder)");
    if (manifest.tasks.empty()) throw Error("a cluster run needs at least one task");
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir.string() + ": cannot create the run folder (" + ec.message() + ")");
    ClusterRun run(fs::absolute(dir).lexically_normal(), manifest);
    for (size_t i = 0; i < manifest.tasks.size(); ++i) fs::create_directories(run.outputDir(i));
    run.save();
    return run;
}

ClusterRun ClusterRun::createAndSubmit(const fs::path& dir, const ClusterManifest& manifest) {
    ClusterRun run = create(dir, manifest);
    try {
        run.submit();
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(run.dir(), ignored);
        throw;
    }
    return run;
}

ClusterRun ClusterRun::preview(const fs::path& dir, const ClusterManifest& manifest) {
    return ClusterRun(fs::absolute(dir).lexically_normal(), manifest);
}

ClusterRun ClusterRun::open(const fs::path& dir) {
    const fs::path file = dir / kManifest;
    if (!fs::is_regular_file(file))
        throw Error(dir.string() + ": not a cluster run folder (no " + kManifest + ")");
    const json j = json::parse(readText(file), nullptr, false);
    if (j.is_discarded()) throw Error(file.string() + ": malformed JSON");
    try {
        return ClusterRun(fs::absolute(dir).lexically_normal(), manifestFrom(j));
    } catch (const std::exception& e) {
        throw Error(file.string() + ": " + e.what());
    }
}

void ClusterRun::save() const {
    writeFileAtomically(dir_ / kManifest, manifestJson(manifest_).dump(2) + "\n");
    writeFileAtomically(scriptPath(), script());
}

fs::path ClusterRun::taskDir(size_t task) const {
    return dir_ / "tasks" / std::to_string(task);
}

std::string ClusterRun::script() const {
    const ClusterManifest& m = manifest_;
    std::ostringstream s;
    s << "#!/bin/bash\n"
      << "# PHATGOOSE Workbench cluster run (" << m.kind << "), made from " << (dir_ / kManifest).string()
      << ".\n"
      << "# One array task per manifest task; each runs one ordinary `phatgoose` command and writes only\n"
      << "# inside its own folder tasks/<index>/ (status.json, log.txt, out/). The model, the expert\n"
      << "# library and this folder must be on a filesystem every node sees.\n"
      << "# Follow it with `phatgoose cluster status --run-dir " << dir_.string() << "`; bring the results\n"
      << "# home with `phatgoose cluster collect --run-dir " << dir_.string() << " --db FILE`.\n"
      << "#SBATCH --job-name=phatgoose-" << m.kind << "\n"
      << "#SBATCH --array=0-" << m.tasks.size() - 1 << "\n"
      << "#SBATCH --output=" << (dir_ / "tasks" / "%a" / "log.txt").string() << "\n";
    if (!m.slurm.partition.empty()) s << "#SBATCH --partition=" << m.slurm.partition << "\n";
    if (!m.slurm.time.empty()) s << "#SBATCH --time=" << m.slurm.time << "\n";
    if (m.slurm.cpus > 0) s << "#SBATCH --cpus-per-task=" << m.slurm.cpus << "\n";
    if (!m.slurm.mem.empty()) s << "#SBATCH --mem=" << m.slurm.mem << "\n";
    if (!m.slurm.account.empty()) s << "#SBATCH --account=" << m.slurm.account << "\n";
    std::istringstream extra(m.slurm.extra_sbatch);
    for (std::string option; extra >> option;) s << "#SBATCH " << option << "\n";
    s << "\n# The tasks, by array index:\n";
    for (size_t i = 0; i < m.tasks.size(); ++i) s << "#   " << i << ": " << m.tasks[i].name << "\n";
    s << "\nexec " << shellQuoted(m.phatgoose) << " cluster run-task --run-dir " << shellQuoted(dir_.string())
      << " --task \"$SLURM_ARRAY_TASK_ID\"\n";
    return s.str();
}

std::string ClusterRun::submit() {
    if (!manifest_.job_id.empty())
        throw Error(dir_.string() + ": already submitted as job " + manifest_.job_id);
    const std::string out =
        slurmClient("sbatch", {"--parsable", QString::fromStdString(scriptPath().string())});
    std::string id = out.substr(0, out.find_first_of(";\n"));
    if (id.empty()) throw Error("sbatch printed no job id");
    manifest_.job_id = id;
    save();
    return id;
}

void ClusterRun::cancel() {
    if (manifest_.job_id.empty()) throw Error(dir_.string() + ": the run was never submitted");
    // The marker first: a task stopped by scancel finishes after it, which is how statuses() tells it from
    // one that failed on its own before.
    writeFileAtomically(dir_ / kCancelled, isoNow() + "\n");
    try {
        slurmClient("scancel", {QString::fromStdString(manifest_.job_id)});
    } catch (...) {
        std::error_code ignored;
        fs::remove(dir_ / kCancelled, ignored);
        throw;
    }
}

std::map<size_t, std::string> squeueStates(const std::string& job_id) {
    std::map<size_t, std::string> states;
    if (job_id.empty()) return states;
    // One line per array task, even for pending ones (-r): "<job>_<index> <STATE>".
    const std::string out =
        slurmClient("squeue", {"-h", "-r", "-j", QString::fromStdString(job_id), "-o", "%i %T"}, false);
    std::istringstream lines(out);
    for (std::string id, state; lines >> id >> state;) {
        const size_t underscore = id.rfind('_');
        if (underscore == std::string::npos) continue;
        try {
            states[size_t(std::stoul(id.substr(underscore + 1)))] = state;
        } catch (const std::exception&) {
        }
    }
    return states;
}

std::vector<TaskStatus> ClusterRun::statuses() const {
    const std::map<size_t, std::string> queued = squeueStates(manifest_.job_id);
    const bool cancelled = fs::exists(dir_ / kCancelled);
    // When the run was cancelled (ISO times compare as text).
    std::string cancelled_at = cancelled ? readText(dir_ / kCancelled) : std::string();
    while (!cancelled_at.empty() && cancelled_at.back() == '\n') cancelled_at.pop_back();
    std::vector<TaskStatus> out(manifest_.tasks.size());
    for (size_t i = 0; i < out.size(); ++i) {
        TaskStatus& st = out[i];
        const json file = json::parse(readText(taskDir(i) / "status.json"), nullptr, false);
        const std::string written = file.is_object() ? file.value("state", std::string()) : std::string();
        if (written == "done" || written == "failed") {
            st.state = written == "done" ? TaskState::Done : TaskState::Failed;
            st.exit_code = file.value("exit_code", 0);
            // A task scancel stopped ends "failed" by its exit status: it was cancelled.
            if (st.state == TaskState::Failed && cancelled &&
                file.value("finished", std::string()) >= cancelled_at)
                st.state = TaskState::Cancelled;
            if (st.state == TaskState::Failed) st.log_tail = lastLines(readText(taskDir(i) / "log.txt"), 5);
        } else if (queued.count(i)) {
            st.state =
                queued.at(i) == "RUNNING" || written == "running" ? TaskState::Running : TaskState::Pending;
        } else if (cancelled) {
            st.state = TaskState::Cancelled;
        } else if (written == "running") {
            // Started, no final status, and Slurm no longer lists it: killed (time limit, node failure).
            st.state = manifest_.job_id.empty() ? TaskState::Running : TaskState::Failed;
            st.log_tail = lastLines(readText(taskDir(i) / "log.txt"), 5);
        }
    }
    return out;
}

int ClusterRun::runTask(size_t task, const std::function<int(const ClusterTask&)>& work) const {
    if (task >= manifest_.tasks.size())
        throw Error(dir_.string() + ": no task " + std::to_string(task) + " (the run has " +
                    std::to_string(manifest_.tasks.size()) + ")");
    const fs::path status = taskDir(task) / "status.json";
    writeFileAtomically(status, json{{"state", "running"}, {"started", isoNow()}}.dump() + "\n");
    int code = 1;
    try {
        code = work(manifest_.tasks[task]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "phatgoose cluster run-task: %s\n", e.what());
        code = 1;
    }
    writeFileAtomically(
        status,
        json{{"state", code == 0 ? "done" : "failed"}, {"exit_code", code}, {"finished", isoNow()}}.dump() +
            "\n");
    return code;
}

}  // namespace phatgoose
