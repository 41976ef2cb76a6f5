#pragma once
// One prompt under two routing configurations side by side (A: method + k, B: method + k): both outputs,
// and where the routing differs — per module the share of tokens whose kept expert sets differ (bars), per
// token and module 1 - Jaccard of the kept sets (a heatmap for each token stream), and the mean overlap.
#include <QWidget>

#include "ui/engine_messages.h"
#include "ui/probe/routing_difference.h"

class QCustomPlot;
class QCPTextElement;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace phatgoose::ui {

class DifferenceHeatmap;
class RoutingMethodPicker;

class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);
    void showResult(const phatgoose::ui::CompareResult& result);
    void setBusy(bool busy);
    void setExpertNames(const QStringList& names);
    void setPrompt(const QString& prompt);
    RoutingMethodPicker* pickerA() const { return picker_a_; }
    RoutingMethodPicker* pickerB() const { return picker_b_; }
    const RoutingDifference& difference() const { return difference_; }
    // The bar chart's heights, one per compared module (difference().modules order).
    const std::vector<double>& moduleBars() const { return module_bars_; }
    DifferenceHeatmap* encoderMap() const { return encoder_map_; }
    DifferenceHeatmap* decoderMap() const { return decoder_map_; }
    QCustomPlot* barsPlot() const { return bars_plot_; }
    QString summary() const;

Q_SIGNALS:
    void compareRequested(const phatgoose::ui::CompareRequest& request);
    void resultShown();

public Q_SLOTS:
    void run() { request(); }

private:
    QWidget* buildControls();
    void request();
    void drawBars(const phatgoose::RoutingTrace& a);
    QLineEdit* prompt_;
    RoutingMethodPicker* picker_a_;
    RoutingMethodPicker* picker_b_;
    QSpinBox* max_tokens_;
    QPushButton* run_;
    QLabel* output_a_;
    QLabel* output_b_;
    QLabel* summary_;
    QCustomPlot* bars_plot_;
    QCPTextElement* bars_title_;
    DifferenceHeatmap* encoder_map_;
    DifferenceHeatmap* decoder_map_;
    RoutingDifference difference_;
    std::vector<double> module_bars_;
    CompareRequest requested_;  // the last request, whose configurations label the outputs
};

}  // namespace phatgoose::ui
