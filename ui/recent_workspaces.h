#pragma once
// The recently opened workspaces, newest first, kept in QSettings (the application's organization and
// name) so that File > Recent workspaces and the start-up choice survive restarts.
#include <QString>
#include <QStringList>

namespace phatgoose::ui {

class RecentWorkspaces {
public:
    static constexpr int kLimit = 8;

    QStringList folders() const;
    // Moves `folder` to the front (once), dropping the oldest beyond kLimit.
    void add(const QString& folder);
    void remove(const QString& folder);

private:
    void store(const QStringList& folders);
};

}  // namespace phatgoose::ui
