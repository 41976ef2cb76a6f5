#include "ui/experts/step_ticker.h"

#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {

QSharedPointer<QCPAxisTicker> stepTicker() {
    QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
    ticker->setTickStep(1.0);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);  // never a tick at step 2.5
    return ticker;
}

}  // namespace phatgoose::ui
