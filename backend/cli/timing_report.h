#pragma once
// --timings: where a command's time went, printed on stderr after it finishes (load, tokenize, routing
// setup, encode, per-token decode, time inside the routers), in the manner of llama.cpp's timing summary.
#include <QCommandLineParser>
#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

namespace phatgoose {

struct GenerationTimings;
class Router;

// Adds --timings to a command.
void declareTimingsOption(QCommandLineParser& parser);

class TimingReport {
public:
    // Enabled, its first line is the start-up: from the process's start to the report's making (mostly the
    // dynamic loading and static initialisers of LibTorch's ~290 libraries; 10 ms resolution).
    explicit TimingReport(bool enabled);
    bool enabled() const { return enabled_; }
    // Milliseconds since the previous mark (or since the report was made), recorded as `phase`.
    void mark(const std::string& phase, const std::string& detail = {});
    void add(const std::string& phase, double ms, const std::string& detail = {});
    // Encode and decode lines from a generation; with a router, how much of them was spent routing.
    void addGeneration(const GenerationTimings& g, const Router* router, const std::string& prefix = {});
    void print(std::ostream& err) const;

private:
    struct Line {
        std::string phase;
        double ms;
        std::string detail;
    };
    bool enabled_;
    std::vector<Line> lines_;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point start_ = last_;
};

// Prints the report when it goes out of scope: after the command's output, whichever way it returns.
class PrintTimingsAtExit {
public:
    PrintTimingsAtExit(const TimingReport& report, std::ostream& err) : report_(report), err_(err) {}
    ~PrintTimingsAtExit() { report_.print(err_); }
    PrintTimingsAtExit(const PrintTimingsAtExit&) = delete;
    PrintTimingsAtExit& operator=(const PrintTimingsAtExit&) = delete;

private:
    const TimingReport& report_;
    std::ostream& err_;
};

}  // namespace phatgoose
