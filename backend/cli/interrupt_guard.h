#pragma once
// Ctrl-C as a cancel flag: while an InterruptGuard lives, SIGINT sets flag() instead of killing the
// process, so long work (an evaluation, a demo build) stops between steps and records that it was
// cancelled instead of vanishing.
#include <atomic>

namespace phatgoose {

class InterruptGuard {
public:
    InterruptGuard();  // clears the flag
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    static const std::atomic<bool>* flag();

private:
    void (*previous_)(int);
};

}  // namespace phatgoose
