#include "cli/timing_report.h"

#include <unistd.h>

#include <fstream>
#include <iomanip>
#include <iterator>
#include <numeric>
#include <ostream>
#include <sstream>

#include "model/generation.h"
#include "routing/router.h"

namespace phatgoose {

namespace {

// Milliseconds since this process started, from /proc (the kernel's start time in clock ticks since boot);
// negative when /proc cannot tell.
double processAgeMs() {
    std::ifstream stat("/proc/self/stat"), uptime("/proc/uptime");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    double up_s = -1;
    uptime >> up_s;
    const size_t after_name = text.rfind(')');  // the command name may hold spaces
    if (after_name == std::string::npos || up_s < 0) return -1;
    std::istringstream fields(text.substr(after_name + 2));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; ++i)
        if (i == 22) return (up_s - std::stod(field) / double(sysconf(_SC_CLK_TCK))) * 1e3;
    return -1;
}

}  // namespace

TimingReport::TimingReport(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    const double age = processAgeMs();
    if (age >= 0) add("start-up", age, "process start to the command, mostly loading LibTorch's libraries");
}

void TimingReport::mark(const std::string& phase, const std::string& detail) {
    const auto now = std::chrono::steady_clock::now();
    add(phase, std::chrono::duration<double, std::milli>(now - last_).count(), detail);
    last_ = now;
}

void TimingReport::add(const std::string& phase, double ms, const std::string& detail) {
    if (enabled_) lines_.push_back({phase, ms, detail});
}

void declareTimingsOption(QCommandLineParser& parser) {
    parser.addOption(
        {"timings",
         "Print where the time went on stderr: load, tokenize, encode, per-token decode, routing."});
}

void TimingReport::addGeneration(const GenerationTimings& g, const Router* router,
                                 const std::string& prefix) {
    if (!enabled_) return;
    if (g.encoded_tokens > 0) {  // 0: generation reused an encoder output it was given
        std::ostringstream enc;
        enc << std::fixed << std::setprecision(1) << g.encoded_tokens << " tokens, "
            << (g.encode_ms > 0 ? 1000.0 * double(g.encoded_tokens) / g.encode_ms : 0.0) << " tokens/s";
        add(prefix + "encode", g.encode_ms, enc.str());
    }
    const double decode_ms = std::accumulate(g.step_ms.begin(), g.step_ms.end(), 0.0);
    std::ostringstream dec;
    dec << std::fixed << std::setprecision(2) << g.step_ms.size() << " tokens";
    if (!g.step_ms.empty()) {
        const double per = decode_ms / double(g.step_ms.size());
        dec << ", " << per << " ms/token, " << std::setprecision(1) << 1000.0 / per << " tokens/s";
        if (g.step_ms.size() > 1) dec << "; first " << std::setprecision(2) << g.step_ms.front() << " ms";
    }
    add(prefix + "decode", decode_ms, dec.str());
    if (router) {
        const double ms = router->routingSeconds() * 1e3, total = g.encode_ms + decode_ms;
        std::ostringstream r;
        r << std::fixed << std::setprecision(1) << (total > 0 ? 100.0 * ms / total : 0.0)
          << "% of encode + decode, " << router->routingCalls() << " routed layer calls";
        add("routing", ms, r.str());
    }
}

void TimingReport::print(std::ostream& err) const {
    if (!enabled_) return;
    const double total =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    // "total" is the command's own time; the start-up line (first) is not part of it.
    for (const Line& l : lines_) {
        err << "phatgoose timings: " << std::left << std::setw(14) << l.phase << std::right << std::fixed
            << std::setprecision(2) << std::setw(11) << l.ms << " ms";
        if (!l.detail.empty()) err << "  (" << l.detail << ")";
        err << "\n";
    }
    err << "phatgoose timings: " << std::left << std::setw(14) << "total" << std::right << std::fixed
        << std::setprecision(2) << std::setw(11) << total << " ms\n";
}

}  // namespace phatgoose
