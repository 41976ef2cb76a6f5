// `phatgoose demo build`: recreate the demo workspace from nothing (backend/demo).
#include <iomanip>
#include <ostream>

#include "cli/command.h"
#include "cli/interrupt_guard.h"
#include "cli/status_line.h"
#include "demo/demo_builder.h"
#include "error.h"
#include "model/compute_policy.h"
#include "version.h"

namespace phatgoose {
namespace {

// One status line per stage, rewritten in place as the stage advances.
class StageLine {
public:
    explicit StageLine(std::ostream& err) : line_(err) {}
    void show(const DemoProgress& p) {
        if (p.stage != stage_) {
            line_.end();
            stage_ = p.stage;
        }
        std::ostringstream text;
        text << p.stage;
        if (!p.item.empty()) text << " " << p.item;
        if (p.total > 0) text << " [" << p.done << "/" << p.total << "]";
        if (p.loss > 0) text << " loss " << std::fixed << std::setprecision(3) << p.loss;
        line_.show(text.str());
    }
    void end() { line_.end(); }

private:
    StatusLine line_;
    std::string stage_;
};

void runDemo(CommandContext& ctx) {
    const QStringList args = ctx.parser.positionalArguments();
    if (args.size() != 1 || args[0] != "build")
        throw UsageError("usage: phatgoose demo build --out DIR [--quick] [--seed N] [--replace]");
    ctx.required("out", "DIR");
    applyComputePolicy(ctx.threads());
    DemoBuildOptions options;
    options.out = ctx.value("out");
    options.scale = ctx.parser.isSet("quick") ? DemoScale::quick() : DemoScale::full();
    options.seed = uint64_t(ctx.integer("seed", 0));
    options.replace = ctx.parser.isSet("replace");
    options.version = PHATGOOSE_VERSION;
    InterruptGuard guard;
    StageLine line(ctx.err);
    const DemoBuildReport report = buildDemoWorkspace(
        options, [&](const DemoProgress& p) { line.show(p); }, InterruptGuard::flag());
    line.end();
    for (const DemoStageTime& s : report.stages)
        ctx.out << std::left << std::setw(14) << s.stage << std::right << std::fixed << std::setprecision(1)
                << std::setw(8) << s.seconds << " s\n";
    ctx.out << std::left << std::setw(14) << "total" << std::right << std::setw(8) << report.seconds << " s\n"
            << "Demo workspace written to " << report.workspace.string() << "\n";
}

}  // namespace

std::vector<Command> demoCommands() {
    return {
        {"demo",
         "Build the demo workspace from nothing: tasks, tokenizer, tiny T5, experts, gates, evaluation.",
         [](QCommandLineParser& p) {
             p.addPositionalArgument("build", "The action (build).");
             p.addOption({"out", "Workspace folder to create (must not exist, unless --replace).", "DIR"});
             p.addOption({"quick", "A minutes-long miniature that exercises the whole pipeline."});
             p.addOption({"seed", "Seed of the tasks, initialisation and training (default 7).", "N", "7"});
             p.addOption(
                 {"replace", "Replace DIR when it exists and is a workspace (never any other folder)."});
             p.addOption(threadsOption());
         },
         runDemo}};
}

}  // namespace phatgoose
