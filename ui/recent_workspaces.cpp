#include "ui/recent_workspaces.h"

#include <QDir>
#include <QSettings>

namespace phatgoose::ui {
namespace {

const char* const kKey = "workspaces/recent";

// One spelling per folder, so "/a/b/" and "/a/./b" are one entry.
QString normalized(const QString& folder) {
    return QDir::cleanPath(QDir(folder).absolutePath());
}

}  // namespace

QStringList RecentWorkspaces::folders() const {
    return QSettings().value(kKey).toStringList();
}

void RecentWorkspaces::add(const QString& folder) {
    QStringList list = folders();
    const QString entry = normalized(folder);
    list.removeAll(entry);
    list.prepend(entry);
    while (list.size() > kLimit) list.removeLast();
    store(list);
}

void RecentWorkspaces::remove(const QString& folder) {
    QStringList list = folders();
    list.removeAll(folder);
    list.removeAll(normalized(folder));
    store(list);
}

void RecentWorkspaces::store(const QStringList& list) {
    QSettings().setValue(kKey, list);
}

}  // namespace phatgoose::ui
