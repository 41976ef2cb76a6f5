#pragma once
// What every subcommand shares: its options parsed by QCommandLineParser, with --help and clear usage
// errors, and the streams to write to.
#include <QCommandLineParser>
#include <QStringList>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace phatgoose {

struct CommandContext {
    QCommandLineParser& parser;
    std::ostream& out;
    std::ostream& err;
    std::string value(const QString& option) const { return parser.value(option).toStdString(); }
    // An integer option; throws phatgoose::Error naming the option when it is not one or below `min`.
    long long integer(const QString& option, long long min) const;
    std::vector<long long> integerList(const QString& option) const;  // "13,7,5,1"
    std::string positionalText() const;                               // the positional words joined by spaces
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
std::vector<Command> evalCommands();      // eval, results
std::vector<Command> demoCommands();      // demo build

// Sets LibTorch's (and OpenBLAS's) thread count; 0 leaves the default.
void setComputeThreads(int threads);
// "OpenBLAS 0.3.21 ..." or the BLAS library LibTorch resolved to.
std::string blasDescription();

}  // namespace phatgoose
