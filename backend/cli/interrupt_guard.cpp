#include "cli/interrupt_guard.h"

#include <csignal>

namespace phatgoose {
namespace {

std::atomic<bool> interrupted{false};

extern "C" void onInterrupt(int) {
    interrupted = true;
}

}  // namespace

InterruptGuard::InterruptGuard() : previous_(std::signal(SIGINT, onInterrupt)) {
    interrupted = false;
}

InterruptGuard::~InterruptGuard() {
    std::signal(SIGINT, previous_);
}

const std::atomic<bool>* InterruptGuard::flag() {
    return &interrupted;
}

}  // namespace phatgoose
