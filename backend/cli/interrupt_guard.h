#pragma once
// Ctrl-C, `kill`, a logout or a scheduler's time limit as a cancel flag: while an InterruptGuard lives,
// SIGINT, SIGTERM and SIGHUP set flag() instead of killing the process, so long work (training, an
// evaluation, a demo build) stops between steps, records that it was cancelled and removes what it had
// half made, instead of vanishing. A second signal of the same kind while the first is being handled ends
// the process the ordinary way (the user insisted).
#include <array>
#include <atomic>

namespace phatgoose {

class InterruptGuard {
public:
    InterruptGuard();  // clears the flag
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    static const std::atomic<bool>* flag();
    // The signal that set the flag (SIGINT, SIGTERM, SIGHUP), 0 while none has.
    static int signalNumber();

private:
    std::array<void (*)(int), 3> previous_;  // the handlers of SIGINT, SIGTERM, SIGHUP before this guard
};

}  // namespace phatgoose
