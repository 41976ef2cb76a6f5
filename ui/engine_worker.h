#pragma once
// The engine's side of the GUI: a QObject moved to a worker QThread. Requests arrive as queued slot calls,
// answers leave as signals carrying plain data (no LibTorch types). The GUI thread never runs model code.
#include <atomic>

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <memory>

#include "routing/routing_trace.h"

namespace phatgoose::ui {

struct ModelSummaryView {
    QString folder, family, shape, vocabulary, parameters, dtype, lora_sites;
};

struct WorkspaceTaskView {
    QString name, role, description, example_prompt;  // role: "held-in" or "held-out"
    bool multiple_choice = false;
    QString train, valid, test;  // absolute paths; empty where the split does not exist
};

// What the GUI knows of an open workspace (store/workspace.h without the backend types).
struct WorkspaceView {
    QString root, name, model_dir, experts_dir, database, multitask_dir;
    QList<WorkspaceTaskView> tasks;
};

struct ProbeRequest {
    QString prompt;
    QString method = "phatgoose";
    int top_k = 2;
    int max_new_tokens = 16;
};

struct ProbeResult {
    QString output;
    phatgoose::RoutingTrace trace;
};

class EngineWorker : public QObject {
    Q_OBJECT
public:
    EngineWorker();
    ~EngineWorker() override;

    // Thread-safe: called directly from the GUI thread (not queued), so it reaches a long job that is
    // running on the engine thread. Every long job clears the flag when it starts and checks it often.
    void requestCancel() { cancel_ = true; }

public Q_SLOTS:
    // Opens the workspace's model and expert library, then announces it with workspaceOpened().
    void openWorkspace(const QString& folder);
    void openModel(const QString& folder);
    void openLibrary(const QString& folder);
    void probe(const phatgoose::ui::ProbeRequest& request);

Q_SIGNALS:
    void busy(const QString& what);
    void idle();
    void workspaceOpened(const phatgoose::ui::WorkspaceView& workspace);
    void modelOpened(const phatgoose::ui::ModelSummaryView& summary);
    void libraryOpened(const QString& folder, const QStringList& experts);
    void probed(const phatgoose::ui::ProbeResult& result);
    void failed(const QString& message);

private:
    struct Engine;  // the loaded model and experts; LibTorch stays in the .cpp
    std::unique_ptr<Engine> engine_;
    std::atomic<bool> cancel_{false};
};

}  // namespace phatgoose::ui

Q_DECLARE_METATYPE(phatgoose::ui::WorkspaceView)
Q_DECLARE_METATYPE(phatgoose::ui::ModelSummaryView)
Q_DECLARE_METATYPE(phatgoose::ui::ProbeRequest)
Q_DECLARE_METATYPE(phatgoose::ui::ProbeResult)
