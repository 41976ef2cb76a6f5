// The workbench GUI.
#include <QApplication>
#include <QCommandLineParser>
#include <QTabWidget>
#include <QTimer>

#include "ui/main_window.h"
#include "ui/probe_view.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("phatgoose-workbench");
    QApplication::setOrganizationName("phatgoose");
    QCommandLineParser parser;
    parser.setApplicationDescription("PHATGOOSE Workbench: routing among LoRA experts on T5.");
    parser.addHelpOption();
    parser.addPositionalArgument("MODEL_DIR", "A T5 model folder to open (optional).");
    parser.addPositionalArgument("EXPERTS_DIR", "An expert library for that model (optional).");
    QCommandLineOption probe("probe", "Run the prompt probe on TEXT once the model is open.", "TEXT");
    QCommandLineOption method("method", "Routing method for --probe.", "NAME", "phatgoose");
    QCommandLineOption screenshot("screenshot", "Save the window to PNG after --probe, then quit.", "FILE");
    parser.addOptions({probe, method, screenshot});
    parser.process(app);

    phatgoose::ui::MainWindow window;
    window.show();
    const QStringList args = parser.positionalArguments();
    if (!args.isEmpty()) window.openModel(args[0]);
    if (args.size() > 1) window.openLibrary(args[1]);
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
