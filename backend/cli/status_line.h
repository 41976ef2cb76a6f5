#pragma once
// One progress line on stderr, rewritten in place (carriage return, padding over a longer earlier text).
// The line is ended when a new one starts and, at the latest, when the StatusLine goes away, so that an
// error reported after it starts on a line of its own instead of over the progress text.
#include <ostream>
#include <string>

namespace phatgoose {

class StatusLine {
public:
    explicit StatusLine(std::ostream& err) : err_(err) {}
    ~StatusLine() { end(); }
    StatusLine(const StatusLine&) = delete;
    StatusLine& operator=(const StatusLine&) = delete;

    void show(const std::string& text) {
        err_ << "\r" << text << std::string(shown_ > text.size() ? shown_ - text.size() : 0, ' ')
             << std::flush;
        shown_ = text.size();
        open_ = true;
    }
    // Keeps the current text and moves to a new line (nothing when no line is open).
    void end() {
        if (open_) err_ << "\n" << std::flush;
        open_ = false;
        shown_ = 0;
    }

private:
    std::ostream& err_;
    size_t shown_ = 0;
    bool open_ = false;
};

}  // namespace phatgoose
