#include "termination_signals.h"

#include <fcntl.h>
#include <unistd.h>
#include <QSocketNotifier>
#include <csignal>

namespace phatgoose::ui {

namespace {

int pipe_fds[2] = {-1, -1};

extern "C" void onTerminationSignal(int sig) {
    std::signal(sig, SIG_DFL);  // the user insists: the next one of this kind ends the process
    const unsigned char byte = static_cast<unsigned char>(sig);
    const ssize_t written = ::write(pipe_fds[1], &byte, 1);
    (void)written;  // a full pipe already holds a request to quit
}

}  // namespace

void TerminationSignals::install() {
    if (pipe_fds[0] >= 0) return;
    if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return;  // without a pipe, signals keep their default
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, onTerminationSignal);
}

TerminationSignals::TerminationSignals(QObject* parent) : QObject(parent) {
    if (pipe_fds[0] < 0) return;
    notifier_ = new QSocketNotifier(pipe_fds[0], QSocketNotifier::Read, this);
    connect(notifier_, &QSocketNotifier::activated, this, &TerminationSignals::drain);
}

void TerminationSignals::drain() {
    unsigned char byte = 0;
    int last = 0;
    while (::read(pipe_fds[0], &byte, 1) == 1) last = byte;
    if (last != 0) Q_EMIT received(last);
}

}  // namespace phatgoose::ui
