// `phatgoose import r-three` and `phatgoose export r-three`: the authors' released PHATGOOSE libraries
// (one torch.save checkpoint each) to and from expert libraries of PEFT folders (experts/rthree_library.h).
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cli/command.h"
#include "cli/interrupt_guard.h"
#include "cli/status_line.h"
#include "experts/expert_library.h"
#include "experts/rthree_library.h"
#include "model/hub_cache.h"
#include "model/t5_config.h"

namespace phatgoose {
namespace {

constexpr const char* kFormat = "r-three";

void requireFormat(const CommandContext& ctx, const char* usage) {
    const QStringList args = ctx.parser.positionalArguments();
    if (args.size() != 2 || args[0] != kFormat) throw UsageError(usage);
}

// One name a line; blank lines and surrounding spaces are ignored.
std::vector<std::string> readNames(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw Error(file + ": cannot open the names file");
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
        const size_t begin = line.find_first_not_of(" \t\r"), end = line.find_last_not_of(" \t\r");
        if (begin != std::string::npos) names.push_back(line.substr(begin, end - begin + 1));
    }
    return names;
}

std::string gigabytes(uint64_t bytes) {
    std::ostringstream text;
    text << std::fixed << std::setprecision(2) << double(bytes) / 1e9 << " GB";
    return text.str();
}

void runImport(CommandContext& ctx) {
    requireFormat(ctx,
                  "usage: phatgoose import r-three BEST_PT --model DIR --out LIBRARY [--names FILE] "
                  "[--dtype f32|bf16]");
    RThreeImportOptions options;
    options.checkpoint = ctx.parser.positionalArguments()[1].toStdString();
    options.model_dir = ctx.required("model", "DIR");
    options.out = ctx.required("out", "LIBRARY");
    if (ctx.parser.isSet("names")) options.names = readNames(ctx.value("names"));
    const std::string dtype = ctx.value("dtype");
    if (dtype != "f32" && dtype != "bf16")
        throw UsageError("--dtype must be f32 or bf16, got '" + dtype + "'");
    options.bf16 = dtype == "bf16";
    InterruptGuard interrupt;
    StatusLine line(ctx.err);
    const RThreeImportReport report = importRThreeLibrary(
        options,
        [&](const RThreeProgress& p) {
            line.show("imported " + std::to_string(p.experts_done) + "/" + std::to_string(p.experts_total) +
                      " experts, " + gigabytes(p.bytes_read) + " of " + gigabytes(p.bytes_total) + " read");
        },
        InterruptGuard::flag());
    line.end();
    for (const std::string& w : report.warnings) ctx.err << "warning: " << w << "\n";
    ctx.out << "imported " << report.experts << " experts (rank " << report.rank << ", " << report.modules
            << " modules each, with their gates) into " << report.library.string() << "\n";
}

void runExport(CommandContext& ctx) {
    requireFormat(ctx, "usage: phatgoose export r-three LIBRARY --model DIR --out best.pt");
    const std::string library = ctx.parser.positionalArguments()[1].toStdString();
    const std::string model = ctx.required("model", "DIR");
    const std::string out = ctx.required("out", "FILE");
    const T5Config config = T5Config::fromFile(resolveModelFolder(model) / "config.json");
    const ExpertLibrary experts = ExpertLibrary::open(library, config);
    exportRThreeLibrary(experts.experts(), model, out);
    ctx.out << "exported " << experts.experts().size() << " experts to " << out << "\n";
}

}  // namespace

std::vector<Command> libraryCommands() {
    return {
        {"import", "Import an expert library from another format: r-three (the authors' released best.pt).",
         [](QCommandLineParser& p) {
             p.addPositionalArgument("r-three",
                                     "The format: r-three (one torch.save checkpoint of a library).");
             p.addPositionalArgument("BEST_PT", "The checkpoint file.");
             p.addOption({"model", "The base model (a folder, or a hub id in the local cache).", "DIR"});
             p.addOption({"out", "The library folder to create.", "LIBRARY"});
             p.addOption({"names",
                          "Expert names, one a line in index order (default: the authors' names for 36 "
                          "or 166 experts, else expert_000...).",
                          "FILE"});
             p.addOption({"dtype", "Store the experts as f32 or bf16 (default f32).", "f32|bf16", "f32"});
         },
         runImport},
        {"export", "Export an expert library to another format: r-three (for the authors' own code).",
         [](QCommandLineParser& p) {
             p.addPositionalArgument("r-three", "The format: r-three.");
             p.addPositionalArgument("LIBRARY", "The expert library (gated, rank-16, alpha-1 experts).");
             p.addOption({"model", "The base model (its embed_tokens go into the file).", "DIR"});
             p.addOption({"out", "The checkpoint to write.", "FILE"});
         },
         runExport},
    };
}

}  // namespace phatgoose
