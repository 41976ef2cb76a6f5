#pragma once
// The engine's side of the GUI: a QObject moved to a worker QThread. Requests arrive as queued slot calls,
// answers leave as signals carrying plain data. The GUI thread never runs model code.
#include <QObject>
#include <QString>

namespace phatgoose::ui {

struct ModelSummaryView {
    QString folder, family, shape, vocabulary, parameters, dtype, lora_sites;
};

class EngineWorker : public QObject {
    Q_OBJECT
public Q_SLOTS:
    void openModel(const QString& folder);
Q_SIGNALS:
    void busy(const QString& what);
    void modelOpened(const phatgoose::ui::ModelSummaryView& summary);
    void failed(const QString& message);
};

}  // namespace phatgoose::ui

Q_DECLARE_METATYPE(phatgoose::ui::ModelSummaryView)
