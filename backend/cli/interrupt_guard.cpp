#include "cli/interrupt_guard.h"

#include <csignal>
#include <iterator>
#include <tuple>

namespace phatgoose {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
std::atomic<bool> interrupted{false};
std::atomic<int> received{0};

extern "C" void onInterrupt(int signal) {
    if (interrupted.exchange(true)) {
        // Asked twice: stop waiting for the next step and end as the signal would have.
        std::signal(signal, SIG_DFL);
        std::raise(signal);
        return;
    }
    received = signal;
}

}  // namespace

InterruptGuard::InterruptGuard() {
    static_assert(std::size(kSignals) == std::tuple_size_v<decltype(previous_)>);
    interrupted = false;
    received = 0;
    for (size_t i = 0; i < std::size(kSignals); ++i) previous_[i] = std::signal(kSignals[i], onInterrupt);
}

InterruptGuard::~InterruptGuard() {
    for (size_t i = 0; i < std::size(kSignals); ++i) std::signal(kSignals[i], previous_[i]);
}

const std::atomic<bool>* InterruptGuard::flag() {
    return &interrupted;
}

int InterruptGuard::signalNumber() {
    return received;
}

}  // namespace phatgoose
