#include "ui/demo_location.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

#include <filesystem>

#include "demo/demo_install.h"
#include "error.h"

namespace phatgoose::ui {

QString shippedDemoWorkspace() {
    // Relative to the program itself, so a tree installed under any prefix, or moved, still finds it.
    const QDir bin(QCoreApplication::applicationDirPath());
    for (const QString& relative :
         {QStringLiteral("../share/phatgoose/demo"), QStringLiteral("../../resources/demo")}) {
        const QString folder = QDir::cleanPath(bin.filePath(relative));
        if (QFileInfo::exists(QDir(folder).filePath("workspace.json"))) return folder;
    }
    return {};
}

QString bundledDemoWorkspace(QString* error) {
    if (error != nullptr) error->clear();
    const QString shipped = shippedDemoWorkspace();
    if (shipped.isEmpty()) return {};
    // Workspaces are written to (results database, new experts) and the shipped copy may be read-only.
    const QString root = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    try {
        return QString::fromStdString(
            userDemoWorkspace(shipped.toStdString(), std::filesystem::path(root.toStdString())).string());
    } catch (const Error& e) {
        if (error != nullptr) *error = QString::fromStdString(e.what());
        return {};
    }
}

}  // namespace phatgoose::ui
