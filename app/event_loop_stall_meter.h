#pragma once
// How responsive the GUI thread stays: a timer asks to fire every 10 ms and the meter records the longest
// gap between two firings. A gap well above 10 ms is a stall the user would feel (a frozen window, a
// late repaint). For reporting, not for timed asserts: a shared machine adds its own noise.
#include <QElapsedTimer>
#include <QObject>
#include <QTimer>

namespace phatgoose::ui {

class EventLoopStallMeter : public QObject {
    Q_OBJECT
public:
    static constexpr int kPeriodMs = 10;

    explicit EventLoopStallMeter(QObject* parent = nullptr);
    void start();
    void stop();
    // The longest time between two consecutive timer firings since start(), in milliseconds (at least
    // kPeriodMs once it has fired twice).
    double longestGapMs() const { return longest_ms_; }
    int ticks() const { return ticks_; }

private:
    void tick();
    QTimer timer_;
    QElapsedTimer clock_;
    qint64 last_ns_ = 0;
    double longest_ms_ = 0.0;
    int ticks_ = 0;
};

}  // namespace phatgoose::ui
