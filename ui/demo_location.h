#pragma once
// Where the workbench finds the bundled demo workspace (docs/ARCHITECTURE.md, "The demo workspace"), opened
// when no other is chosen.
#include <QString>

namespace phatgoose::ui {

// The shipped demo folder beside the program: <bin>/../share/phatgoose/demo once installed, else
// <bin>/../../resources/demo in a build tree. Empty when neither holds a workspace.json. It may be
// read-only (/usr/share): never open it for writing.
QString shippedDemoWorkspace();

// The demo workspace to open: the user's writable copy of the shipped one, in AppDataLocation/demo, made
// on first use and made again when the shipped demo changes (backend/demo/demo_install.h). Empty when no
// demo is shipped, or when the copy cannot be made: `error` (when given) then receives the reason.
QString bundledDemoWorkspace(QString* error = nullptr);

}  // namespace phatgoose::ui
