#pragma once
// Writing a routing trace to a JSON file (RoutingTrace::toJson; RoutingTrace::fromJson reads it back),
// through QSaveFile so that a failed save never leaves half a file.
#include <QString>

#include "routing/routing_trace.h"

namespace phatgoose::ui {

bool saveTraceJson(const phatgoose::RoutingTrace& trace, const QString& file, QString* error);

}  // namespace phatgoose::ui
