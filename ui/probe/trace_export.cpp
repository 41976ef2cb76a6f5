#include "ui/probe/trace_export.h"

#include <QObject>
#include <QSaveFile>

namespace phatgoose::ui {

bool saveTraceJson(const phatgoose::RoutingTrace& trace, const QString& file, QString* error) {
    QSaveFile out(file);
    const QByteArray json = QByteArray::fromStdString(trace.toJson());
    if (!out.open(QIODevice::WriteOnly) || out.write(json) != json.size() || !out.commit()) {
        if (error) *error = QObject::tr("%1: %2").arg(file, out.errorString());
        return false;
    }
    return true;
}

}  // namespace phatgoose::ui
