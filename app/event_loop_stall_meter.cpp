#include "event_loop_stall_meter.h"

#include <algorithm>

namespace phatgoose::ui {

EventLoopStallMeter::EventLoopStallMeter(QObject* parent) : QObject(parent) {
    timer_.setTimerType(Qt::PreciseTimer);  // coarse timers may fire 5 % late by design
    timer_.setInterval(kPeriodMs);
    connect(&timer_, &QTimer::timeout, this, &EventLoopStallMeter::tick);
}

void EventLoopStallMeter::start() {
    longest_ms_ = 0.0;
    ticks_ = 0;
    clock_.start();
    last_ns_ = 0;
    timer_.start();
}

void EventLoopStallMeter::stop() {
    timer_.stop();
    tick();  // a stall still in progress when measuring stops counts too
}

void EventLoopStallMeter::tick() {
    const qint64 now = clock_.nsecsElapsed();
    longest_ms_ = std::max(longest_ms_, double(now - last_ns_) / 1e6);
    last_ns_ = now;
    ++ticks_;
}

}  // namespace phatgoose::ui
