#pragma once
// One token under the microscope. Above: at one module, every expert's router score for the token (the gate
// scores for phatgoose), sorted by score so that the kept top-k (in a second colour) come first; a library
// larger than the plot's width scrolls sideways, and a name filter narrows the bars. Below: the token's
// top-1 expert and its weight at every module of its stream, bars coloured by expert, named in a scrollable
// legend beside the plot.
#include <QWidget>
#include <set>

#include "routing/routing_trace.h"

class QCustomPlot;
class QCPTextElement;
class QScrollBar;

namespace phatgoose::ui {

class ExpertLegend;

class GateScoresView : public QWidget {
    Q_OBJECT
public:
    explicit GateScoresView(QWidget* parent = nullptr);
    void setTrace(const phatgoose::RoutingTrace& trace);
    // Draws `token` (a row of the module's stream) at the module `site`.
    void showToken(const QString& site, int token);
    void clear();
    // Only experts whose name contains `text` (case-insensitive) get a bar; empty: all.
    void setExpertFilter(const QString& text);
    static constexpr int kVisibleBars = 30;  // bars in view at once; the rest scroll

    QCustomPlot* scoresPlot() const { return scores_plot_; }
    QCustomPlot* modulesPlot() const { return modules_plot_; }
    // What is drawn, per library expert: the bar heights (NaN: no bar) and which bars are highlighted as
    // kept.
    const std::vector<double>& bars() const { return bars_; }
    const std::set<int>& highlighted() const { return highlighted_; }
    // The library indices of the drawn bars, left to right (highest score first).
    const std::vector<int>& barOrder() const { return order_; }
    QScrollBar* scoresScroll() const { return scroll_; }
    ExpertLegend* modulesLegend() const { return legend_; }
    bool showsScores() const {
        return shows_scores_;
    }  // false: the method records no scores, bars are weights
    // Below: the site index and top-1 expert of every module of the token's stream.
    const std::vector<int>& moduleSites() const { return module_sites_; }
    const std::vector<int>& moduleTopExperts() const { return module_top_; }

private:
    void drawScores(const SiteRouting& site, int token);
    void drawModules(const SiteRouting& site, int token);
    void scrollScores(int first);
    QCustomPlot* scores_plot_;
    QScrollBar* scroll_;
    ExpertLegend* legend_;
    QCustomPlot* modules_plot_;
    QCPTextElement* scores_title_;
    QCPTextElement* modules_title_;
    phatgoose::RoutingTrace trace_;
    std::vector<double> bars_;
    std::set<int> highlighted_;
    std::vector<int> order_;
    QString filter_;
    QString shown_site_;
    int shown_token_ = -1;
    bool shows_scores_ = false;
    std::vector<int> module_sites_, module_top_;
};

}  // namespace phatgoose::ui
