#pragma once
// The x axis of a loss curve counts optimizer steps: whole numbers, ticks at multiples of 1, 2, 5, 10...
#include <QSharedPointer>

class QCPAxisTicker;

namespace phatgoose::ui {

QSharedPointer<QCPAxisTicker> stepTicker();

}  // namespace phatgoose::ui
