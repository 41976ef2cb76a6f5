#pragma once
// What every subcommand shares: its options parsed by QCommandLineParser, with --help and clear usage
// errors, and the streams to write to.
#include <QCommandLineParser>
#include <QStringList>
#include <functional>
#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include "error.h"

namespace phatgoose {

// The command line itself is wrong (a missing or malformed option): exit code 2, as for options the parser
// rejects. Everything else that fails is a phatgoose::Error: exit code 1.
class UsageError : public Error {
public:
    using Error::Error;
};

struct CommandContext {
    QCommandLineParser& parser;
    std::ostream& out;
    std::ostream& err;
    std::string value(const QString& option) const { return parser.value(option).toStdString(); }
    // A required option's value; UsageError "--OPTION WHAT is required" when it is missing.
    std::string required(const QString& option, const char* what) const;
    // An integer option; UsageError naming the option when it is not one or outside [min, max].
    long long integer(const QString& option, long long min,
                      long long max = std::numeric_limits<long long>::max()) const;
    // A finite number (never NaN or infinite) of at least `min`; UsageError naming the option otherwise.
    double number(const QString& option, double min = -std::numeric_limits<double>::max()) const;
    // "13,7,5,1": every item an integer (an empty item, as in "13,,7", is refused); "" gives no items.
    std::vector<long long> integerList(const QString& option) const;
    // --threads: 0 (the default) up to the machine's hardware threads.
    int threads() const;
    std::string positionalText() const;  // the positional words joined by spaces
};

struct Command {
    std::string name;
    std::string summary;
    std::function<void(QCommandLineParser&)> declare;  // adds options and positional arguments
    std::function<void(CommandContext&)> run;          // throws phatgoose::Error on failure
};

std::vector<Command> modelCommands();     // info, tokenize, generate, logits
std::vector<Command> benchCommands();     // bench
std::vector<Command> trainingCommands();  // train-expert, train-gate
std::vector<Command> routingCommands();   // route
std::vector<Command> analysisCommands();  // route-stats
std::vector<Command> evalCommands();      // eval, results
std::vector<Command> demoCommands();      // demo build
std::vector<Command> clusterCommands();   // cluster train-gates, eval, status, cancel, collect
std::vector<Command> libraryCommands();   // import, export (the authors' r-three libraries)

// --threads N: BLAS products and the engine's own kernels (model/compute_policy.h); 0 = every core.
QCommandLineOption threadsOption();
// "OpenBLAS 0.3.21 ..." or the BLAS library LibTorch resolved to.
std::string blasDescription();

}  // namespace phatgoose
