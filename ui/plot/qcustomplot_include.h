#pragma once
// QCustomPlot's header uses Qt's `signals` and `foreach` keywords, which this project switches off
// (QT_NO_KEYWORDS, because LibTorch uses those identifiers). Map them to their Q_ macros for this header
// only.
#include <QtGlobal>
#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef slots
#undef emit
#undef foreach
