// `phatgoose demo build`: recreate the demo workspace from nothing (backend/demo).
#include <iomanip>
#include <ostream>

#include "cli/command.h"
#include "cli/interrupt_guard.h"
#include "demo/demo_builder.h"
#include "error.h"
#include "version.h"

namespace phatgoose {
namespace {

// One status line per stage, rewritten in place as the stage advances.
class StageLine {
public:
    explicit StageLine(std::ostream& err) : err_(err) {}
    void show(const DemoProgress& p) {
        if (p.stage != stage_) {
            if (!stage_.empty()) err_ << "\n";
            stage_ = p.stage;
        }
        std::ostringstream line;
        line << p.stage;
        if (!p.item.empty()) line << " " << p.item;
        if (p.total > 0) line << " [" << p.done << "/" << p.total << "]";
        if (p.loss > 0) line << " loss " << std::fixed << std::setprecision(3) << p.loss;
        const std::string text = line.str();
        err_ << "\r" << text << std::string(shown_ > text.size() ? shown_ - text.size() : 0, ' ')
             << std::flush;
        shown_ = text.size();
    }
    void end() { err_ << "\n"; }

private:
    std::ostream& err_;
    std::string stage_;
    size_t shown_ = 0;
};

void runDemo(CommandContext& ctx) {
    const QStringList args = ctx.parser.positionalArguments();
    if (args.size() != 1 || args[0] != "build")
        throw Error("usage: phatgoose demo build --out DIR [--quick] [--seed N] [--replace]");
    if (!ctx.parser.isSet("out")) throw Error("--out DIR is required");
    setComputeThreads(int(ctx.integer("threads", 0)));
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
             p.addOption({"replace", "Replace DIR when it exists."});
             p.addOption({"threads", "Compute threads (default: LibTorch's choice).", "N", "0"});
         },
         runDemo}};
}

}  // namespace phatgoose
