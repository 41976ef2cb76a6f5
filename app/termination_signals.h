#pragma once
// `kill`, a logout (SIGHUP) or Ctrl-C in the terminal that started the workbench as File > Quit: the main
// window closes the ordinary way, so a training or an evaluation still running is cancelled and recorded as
// such, and the window layout is saved. A signal handler may do almost nothing, so it only writes a byte to
// a pipe that the event loop watches. A second signal while quitting ends the process the default way.
#include <QObject>

class QSocketNotifier;

namespace phatgoose::ui {

class TerminationSignals : public QObject {
    Q_OBJECT
public:
    // Installs the handlers: call early in main(), before the QApplication (a signal arriving before
    // the event loop runs waits in the pipe).
    static void install();
    // Starts watching the pipe; needs the QApplication.
    explicit TerminationSignals(QObject* parent = nullptr);

Q_SIGNALS:
    void received(int signal_number);

private:
    void drain();
    QSocketNotifier* notifier_ = nullptr;
};

}  // namespace phatgoose::ui
