#include "cli/cli.h"

#include <QCoreApplication>
#include <algorithm>
#include <cmath>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "error.h"
#include "version.h"

namespace phatgoose {
namespace {

std::vector<Command> allCommands() {
    std::vector<Command> all;
    for (auto group : {modelCommands, routingCommands, analysisCommands, trainingCommands, evalCommands,
                       libraryCommands, demoCommands, clusterCommands, benchCommands})
        for (Command& c : group()) all.push_back(std::move(c));
    return all;
}

void printOverview(std::ostream& out, const std::vector<Command>& commands) {
    out << "phatgoose " << PHATGOOSE_VERSION
        << ": PHATGOOSE routing among LoRA experts on T5, from the command line.\n\n"
           "Usage: phatgoose COMMAND [options] [arguments]\n\nCommands:\n";
    for (const Command& c : commands) {
        out << "  " << c.name << std::string(c.name.size() < 16 ? 16 - c.name.size() : 1, ' ') << c.summary
            << "\n";
    }
    out << "\nRun 'phatgoose COMMAND --help' for a command's options.\n";
}

std::string commandHelp(const Command& c, QCommandLineParser& parser) {
    // helpText() begins with a generic "Usage:" line built from the application name; replace it.
    QString text = parser.helpText();
    text = text.mid(text.indexOf('\n') + 1);
    if (!text.endsWith('\n')) text += '\n';
    return "Usage: phatgoose " + c.name + " [options]\n" + c.summary + "\n" + text.toStdString();
}

}  // namespace

std::string CommandContext::required(const QString& option, const char* what) const {
    if (!parser.isSet(option)) throw UsageError("--" + option.toStdString() + " " + what + " is required");
    return value(option);
}

long long CommandContext::integer(const QString& option, long long min, long long max) const {
    bool ok = false;
    const long long v = parser.value(option).toLongLong(&ok);
    if (!ok || v < min || v > max) {
        std::string range = "at least " + std::to_string(min);
        if (max != std::numeric_limits<long long>::max())
            range = "from " + std::to_string(min) + " to " + std::to_string(max);
        throw UsageError("--" + option.toStdString() + " must be an integer " + range + ", got '" +
                         value(option) + "'");
    }
    return v;
}

double CommandContext::number(const QString& option, double min) const {
    bool ok = false;
    const double v = parser.value(option).toDouble(&ok);
    if (!ok || !std::isfinite(v) || v < min) {
        const std::string bound = min > -std::numeric_limits<double>::max()
                                      ? " of at least " + QString::number(min).toStdString()
                                      : "";
        throw UsageError("--" + option.toStdString() + " must be a finite number" + bound + ", got '" +
                         value(option) + "'");
    }
    return v;
}

std::vector<long long> CommandContext::integerList(const QString& option) const {
    std::vector<long long> out;
    const QString text = parser.value(option).trimmed();
    if (text.isEmpty()) return out;
    const QStringList parts = text.split(',');
    for (int i = 0; i < parts.size(); ++i) {
        const QString part = parts[i].trimmed();
        if (part.isEmpty())
            throw UsageError("--" + option.toStdString() + ": item " + std::to_string(i + 1) + " of '" +
                             text.toStdString() + "' is empty");
        bool ok = false;
        out.push_back(part.toLongLong(&ok));
        if (!ok)
            throw UsageError("--" + option.toStdString() + ": '" + part.toStdString() +
                             "' is not an integer");
    }
    return out;
}

int CommandContext::threads() const {
    const long long cores = std::max(1u, std::thread::hardware_concurrency());
    return int(integer("threads", 0, cores));
}

std::string CommandContext::positionalText() const {
    return parser.positionalArguments().join(' ').toStdString();
}

int runCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    QCoreApplication::setApplicationName("phatgoose");
    const std::vector<Command> commands = allCommands();
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        printOverview(args.empty() ? err : out, commands);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version" || args[0] == "-v" || args[0] == "version") {
        out << "phatgoose " << PHATGOOSE_VERSION << "\n";
        return 0;
    }
    auto it =
        std::find_if(commands.begin(), commands.end(), [&](const Command& c) { return c.name == args[0]; });
    if (it == commands.end()) {
        err << "phatgoose: unknown command '" << args[0] << "'. Run 'phatgoose --help' for the list.\n";
        return 2;
    }
    QCommandLineParser parser;
    parser.setSingleDashWordOptionMode(QCommandLineParser::ParseAsLongOptions);
    parser.addHelpOption();
    it->declare(parser);
    QStringList qargs{QString::fromStdString("phatgoose " + it->name)};
    for (size_t i = 1; i < args.size(); ++i) qargs << QString::fromStdString(args[i]);
    if (!parser.parse(qargs)) {
        err << "phatgoose " << it->name << ": " << parser.errorText().toStdString() << "\n";
        return 2;
    }
    if (parser.isSet("help")) {
        out << commandHelp(*it, parser);
        return 0;
    }
    CommandContext ctx{parser, out, err};
    try {
        it->run(ctx);
    } catch (const UsageError& e) {
        err << "phatgoose " << it->name << ": usage error: " << e.what() << " (see 'phatgoose " << it->name
            << " --help')\n";
        return 2;
    } catch (const std::exception& e) {
        // Backend errors are complete sentences; LibTorch's carry a C++ backtrace after the first line.
        std::string message = e.what();
        message = message.substr(0, message.find('\n'));
        err << "phatgoose " << it->name << ": error: " << message << "\n";
        return 1;
    }
    return 0;
}

}  // namespace phatgoose
