#include "cli/timing_report.h"

#include <iomanip>
#include <numeric>
#include <ostream>
#include <sstream>

#include "model/generation.h"
#include "routing/router.h"

namespace phatgoose {

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
