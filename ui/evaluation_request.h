#pragma once
// What the Results view asks the engine thread to evaluate, as plain Qt data (no backend types): the
// routing methods x datasets grid of `phatgoose eval`, written into the workspace's results database.
#include <QMetaType>
#include <QString>
#include <QStringList>

namespace phatgoose::ui {

struct EvaluationRequest {
    QString database;     // the workspace's workbench.sqlite
    QStringList methods;  // labels as `phatgoose eval --methods` takes them: "phatgoose", "single:qa"
    int top_k = 2;
    QStringList datasets;  // JSON Lines files
    int batch_size = 16;
    int max_new_tokens = 32;
};

}  // namespace phatgoose::ui

Q_DECLARE_METATYPE(phatgoose::ui::EvaluationRequest)
