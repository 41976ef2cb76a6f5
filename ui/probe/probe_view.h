#pragma once
// The prompt probe: a prompt, a routing configuration and the number of tokens to generate; the input and
// output as token chips, and the routing: a heatmap (experts x tokens at one module, or every token's top-1
// expert across modules) beside the scores of every expert for the selected token (GateScoresView).
// Modules are picked by stack, layer and kind (or by full path); a token by clicking the heatmap or a chip.
#include <QWidget>

#include "ui/engine_messages.h"
#include "ui/probe/trace_queries.h"

class QComboBox;
class QLineEdit;
class QLabel;
class QPushButton;
class QSpinBox;

namespace phatgoose::ui {

class GateScoresView;
class RoutingHeatmap;
class RoutingMethodPicker;
class TokenStrip;

class ProbeView : public QWidget {
    Q_OBJECT
public:
    explicit ProbeView(QWidget* parent = nullptr);
    void showResult(const phatgoose::ui::ProbeResult& result);
    void setBusy(bool busy);
    void setExpertNames(const QStringList& names);
    RoutingHeatmap* heatmap() const { return heatmap_; }
    GateScoresView* gateScores() const { return gate_scores_; }
    RoutingMethodPicker* methodPicker() const { return picker_; }
    QComboBox* siteSelector() const { return site_; }
    QComboBox* viewSelector() const { return view_; }
    QComboBox* scopeSelector() const { return scope_; }
    QLineEdit* expertFilter() const { return expert_filter_; }
    QSpinBox* expertLimit() const { return expert_limit_; }
    TokenStrip* inputTokens() const { return input_tokens_; }
    TokenStrip* outputTokens() const { return output_tokens_; }
    const phatgoose::RoutingTrace& trace() const { return trace_; }
    void setPrompt(const QString& prompt);
    QString prompt() const;
    // Sets the prompt unless the user has typed one.
    void suggestPrompt(const QString& prompt);
    void setMethod(const QString& method);
    // Picks a module by its full path, and a token of a stream (as a click on the heatmap or a chip does).
    void selectSite(const QString& site);
    void selectToken(bool decoder_tokens, int token);
    int selectedToken(bool decoder_tokens) const { return selected_[decoder_tokens ? 1 : 0]; }
    bool saveTrace(const QString& file, QString* error) const;

Q_SIGNALS:
    void probeRequested(const phatgoose::ui::ProbeRequest& request);
    void resultShown();

public Q_SLOTS:
    void run() { request(); }

private:
    QWidget* buildControls();
    QWidget* buildModulePicker();
    void request();
    void saveTraceInteractively();
    void fillSites();
    void siteChanged();
    void pickerChanged();
    void fillPickers(const SiteRouting& site);
    void showSelection();
    void switchToStream(TokenStream stream);
    QLineEdit* prompt_;
    RoutingMethodPicker* picker_;
    QSpinBox* max_tokens_;
    QPushButton* run_;
    QPushButton* save_trace_;
    QLabel* output_;
    TokenStrip* input_tokens_;
    TokenStrip* output_tokens_;
    QComboBox* stack_;
    QComboBox* layer_;
    QComboBox* kind_;
    QComboBox* site_;
    QComboBox* view_;
    QComboBox* scope_;
    QLineEdit* expert_filter_;
    QSpinBox* expert_limit_;
    RoutingHeatmap* heatmap_;
    GateScoresView* gate_scores_;
    phatgoose::RoutingTrace trace_;
    int selected_[2] = {-1, -1};  // the selected encoder and decoder token
};

}  // namespace phatgoose::ui
