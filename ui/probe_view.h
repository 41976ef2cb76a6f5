#pragma once
// The prompt probe: a prompt, a routing method, k; the output text and, per module, which experts every
// token used (RoutingHeatmap).
#include <QWidget>

#include "ui/engine_worker.h"

class QComboBox;
class QLineEdit;
class QLabel;
class QPushButton;
class QSpinBox;

namespace phatgoose::ui {

class RoutingHeatmap;

class ProbeView : public QWidget {
    Q_OBJECT
public:
    explicit ProbeView(QWidget* parent = nullptr);
    void showResult(const phatgoose::ui::ProbeResult& result);
    void setBusy(bool busy);
    RoutingHeatmap* heatmap() const { return heatmap_; }
    QComboBox* siteSelector() const { return site_; }
    void setPrompt(const QString& prompt);
    void setMethod(const QString& method);

Q_SIGNALS:
    void probeRequested(const phatgoose::ui::ProbeRequest& request);
    void resultShown();

public Q_SLOTS:
    void run() { request(); }

private:
    void request();
    QLineEdit* prompt_;
    QComboBox* method_;
    QSpinBox* top_k_;
    QSpinBox* max_tokens_;
    QPushButton* run_;
    QLabel* output_;
    QComboBox* site_;
    RoutingHeatmap* heatmap_;
};

}  // namespace phatgoose::ui
