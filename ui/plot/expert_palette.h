#pragma once
// One colour per expert, the same in every view, so that "which expert" reads the same everywhere.
#include <QColor>

#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {

QColor expertColor(int expert);
// A colour map for expert ids 0..count-1 drawn over the data range [-0.5, count - 0.5]: flat bands, one per
// expert, so a QCPColorScale beside it reads as the legend (its ticks name the experts).
QCPColorGradient expertGradient(int count);
QCPRange expertDataRange(int count);

}  // namespace phatgoose::ui
