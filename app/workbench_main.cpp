// The workbench GUI.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTabWidget>
#include <QTimer>

#include "model/hub_cache.h"
#include "routing/routing_methods.h"
#include "ui/main_window.h"
#include "ui/probe/probe_view.h"
#include "version.h"

// The shell: start-up and --measure-stall
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QSpinBox>
#include <cstdio>
#include <cstring>
#include <memory>

#include "event_loop_stall_meter.h"
#include "termination_signals.h"
#include "ui/engine_worker.h"
#include "ui/experts/experts_view.h"
#include "ui/experts/train_gate_dialog.h"
#include "ui/experts/training_progress_panel.h"

namespace {

using phatgoose::ui::EventLoopStallMeter;
using phatgoose::ui::TrainGateDialog;
using phatgoose::ui::TrainingOutcomeView;

void reportStall(const EventLoopStallMeter& meter, const TrainingOutcomeView& outcome) {
    std::printf("training %s%s%s\n", qPrintable(outcome.status), outcome.message.isEmpty() ? "" : ": ",
                qPrintable(outcome.message));
    std::printf("timer_ticks %d\nlongest_stall_ms %.1f\n", meter.ticks(), meter.longestGapMs());
    std::fflush(stdout);
    QApplication::exit(outcome.status == "finished" ? 0 : 1);
}

void startMeasuredTraining(TrainGateDialog* dialog, EventLoopStallMeter* meter) {
    QObject::connect(dialog, &TrainGateDialog::trainingEnded, meter, [meter](const TrainingOutcomeView& o) {
        meter->stop();
        reportStall(*meter, o);
    });
    meter->start();
    dialog->start();
    if (dialog->isTraining()) return;
    std::fprintf(stderr, "phatgoose-workbench: %s\n", qPrintable(dialog->panel()->statusLabel()->text()));
    QApplication::exit(1);
}

// --measure-stall: trains the first expert's gate for 50 steps through the dialog (live curve and all),
// saving nothing, while an EventLoopStallMeter watches the GUI thread; prints the longest gap and quits.
// The meter starts once the dialog is up, as when a user presses Start: opening the workspace and showing
// the dialog for the first time are not part of training.
void measureStall(phatgoose::ui::MainWindow& window) {
    using namespace phatgoose::ui;
    auto* meter = new EventLoopStallMeter(&window);
    auto started = std::make_shared<bool>(false);
    QObject::connect(
        window.expertsView(), &ExpertsView::expertsShown, &window, [&window, meter, started](int n) {
            if (*started || n == 0) return;
            *started = true;
            const QString first = window.expertsView()->experts().front().name;
            TrainGateDialog* dialog = window.showTrainGateDialog({first});
            dialog->stepsBox()->setValue(50);
            dialog->setSaving(false);
            QTimer::singleShot(500, dialog, [dialog, meter] { startMeasuredTraining(dialog, meter); });
        });
    QObject::connect(window.worker(), &EngineWorker::failed, &window, [](const QString& message) {
        std::fprintf(stderr, "phatgoose-workbench: %s\n", qPrintable(message));
        QApplication::exit(1);
    });
}

}  // namespace

// The command line, parsed before any QApplication exists: --help, --version and a bad option must work
// (and exit) on a machine without a display, where creating the GUI application would abort.
struct WorkbenchOptions {
    QCommandLineParser parser;
    QCommandLineOption measure_stall{
        "measure-stall",
        "Open WORKSPACE, train the first expert's gate for 50 steps (saving "
        "nothing) and print the GUI event loop's longest stall (longest_stall_ms), "
        "then quit.",
        "WORKSPACE"};
    QCommandLineOption probe{"probe", "Run the prompt probe on TEXT once the model is open.", "TEXT"};
    QCommandLineOption method{"method",
                              "Routing method for --probe (default " +
                                  QString::fromStdString(phatgoose::defaultRoutingMethod()) + ").",
                              "NAME", QString::fromStdString(phatgoose::defaultRoutingMethod())};
    QCommandLineOption screenshot{"screenshot", "Save the window to PNG after --probe, then quit.", "FILE"};

    WorkbenchOptions() {
        parser.setApplicationDescription("PHATGOOSE Workbench: routing among LoRA experts on T5.");
        parser.addHelpOption();
        parser.addVersionOption();
        parser.addPositionalArgument(
            "WORKSPACE_DIR",
            "A workspace to open (optional; default: the last one, else the demo). A "
            "T5 model folder (with config.json), or a hub id such as google/flan-t5-large in the local "
            "Hugging Face cache, opens as a bare model instead.");
        parser.addPositionalArgument("EXPERTS_DIR",
                                     "With a model folder: an expert library for it (optional).");
        parser.addOptions({probe, method, screenshot, measure_stall});
    }
};

int main(int argc, char** argv) {
    phatgoose::ui::TerminationSignals::install();
    QCoreApplication::setApplicationName("phatgoose-workbench");
    QCoreApplication::setApplicationVersion(PHATGOOSE_VERSION);
    QCoreApplication::setOrganizationName("phatgoose");
    WorkbenchOptions options;
    QStringList arguments;
    for (int i = 0; i < argc; ++i) arguments << QString::fromLocal8Bit(argv[i]);
    if (!options.parser.parse(arguments)) {
        std::fprintf(stderr, "phatgoose-workbench: %s\n", qPrintable(options.parser.errorText()));
        return 2;
    }
    if (options.parser.isSet("help")) {
        std::fputs(qPrintable(options.parser.helpText()), stdout);
        return 0;
    }
    if (options.parser.isSet("version")) {
        std::printf("phatgoose-workbench %s\n", PHATGOOSE_VERSION);
        return 0;
    }
    const QCommandLineParser& parser = options.parser;
    const QCommandLineOption &measure_stall = options.measure_stall, &probe = options.probe,
                             &method = options.method, &screenshot = options.screenshot;

    QApplication app(argc, argv);
    // Ties windows to the installed desktop entry (Wayland app id, task bars) and its icon.
    QGuiApplication::setDesktopFileName("io.github.phatgoose.Workbench");
    QApplication::setWindowIcon(QIcon::fromTheme("io.github.phatgoose.Workbench"));

    phatgoose::ui::MainWindow window;
    window.show();
    phatgoose::ui::TerminationSignals termination;
    QObject::connect(&termination, &phatgoose::ui::TerminationSignals::received, &window, [](int sig) {
        std::fprintf(stderr, "phatgoose-workbench: SIG%s received, quitting\n", sigabbrev_np(sig));
        QApplication::quit();  // ~MainWindow cancels running work and waits for the engine thread
    });
    const QStringList args = parser.positionalArguments();
    if (parser.isSet(measure_stall)) {
        measureStall(window);
        window.openWorkspace(parser.value(measure_stall));
    } else if (args.isEmpty()) {
        window.openStartupWorkspace();
    } else if (QFileInfo::exists(QDir(args[0]).filePath("config.json")) ||
               (!QFileInfo::exists(args[0]) && phatgoose::looksLikeHubId(args[0].toStdString()))) {
        // A model folder, or a hub id ("google/flan-t5-large") in the local Hugging Face cache.
        window.openModel(args[0]);
        if (args.size() > 1) window.openLibrary(args[1]);
    } else {
        window.openWorkspace(args[0]);
    }
    if (parser.isSet(probe)) {
        // Requests queue on the engine thread behind the opening of the model and the library.
        window.tabs()->setCurrentWidget(window.probeView());
        window.probeView()->setPrompt(parser.value(probe));
        window.probeView()->setMethod(parser.value(method));
        window.probeView()->run();
    }
    if (parser.isSet(screenshot)) {
        const QString file = parser.value(screenshot);
        QObject::connect(window.probeView(), &phatgoose::ui::ProbeView::resultShown, &window,
                         [&window, file] {
                             QTimer::singleShot(300, &window, [&window, file] {
                                 window.grab().save(file);
                                 QApplication::quit();
                             });
                         });
    }
    return app.exec();
}
