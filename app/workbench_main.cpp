// The workbench GUI.
#include <QApplication>
#include <QCommandLineParser>

#include "ui/main_window.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("phatgoose-workbench");
    QApplication::setOrganizationName("phatgoose");
    QCommandLineParser parser;
    parser.setApplicationDescription("PHATGOOSE Workbench: routing among LoRA experts on T5.");
    parser.addHelpOption();
    parser.addPositionalArgument("MODEL_DIR", "A T5 model folder to open (optional).");
    parser.process(app);
    phatgoose::ui::MainWindow window;
    window.show();
    if (!parser.positionalArguments().isEmpty()) window.openModel(parser.positionalArguments().first());
    return app.exec();
}
