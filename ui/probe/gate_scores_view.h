#pragma once
// One token under the microscope. Above: at one module, every expert's router score for the token (the gate
// scores for phatgoose), the kept top-k bars in a second colour. Below: the token's top-1 expert and its
// weight at every module of its stream, bars coloured by expert.
#include <QWidget>
#include <set>

#include "routing/routing_trace.h"

class QCustomPlot;
class QCPTextElement;

namespace phatgoose::ui {

class GateScoresView : public QWidget {
    Q_OBJECT
public:
    explicit GateScoresView(QWidget* parent = nullptr);
    void setTrace(const phatgoose::RoutingTrace& trace);
    // Draws `token` (a row of the module's stream) at the module `site`.
    void showToken(const QString& site, int token);
    void clear();

    QCustomPlot* scoresPlot() const { return scores_plot_; }
    QCustomPlot* modulesPlot() const { return modules_plot_; }
    // What is drawn, per library expert: the bar heights (NaN: no bar) and which bars are highlighted as
    // kept.
    const std::vector<double>& bars() const { return bars_; }
    const std::set<int>& highlighted() const { return highlighted_; }
    bool showsScores() const {
        return shows_scores_;
    }  // false: the method records no scores, bars are weights
    // Below: the site index and top-1 expert of every module of the token's stream.
    const std::vector<int>& moduleSites() const { return module_sites_; }
    const std::vector<int>& moduleTopExperts() const { return module_top_; }

private:
    void drawScores(const SiteRouting& site, int token);
    void drawModules(const SiteRouting& site, int token);
    QCustomPlot* scores_plot_;
    QCustomPlot* modules_plot_;
    QCPTextElement* scores_title_;
    QCPTextElement* modules_title_;
    phatgoose::RoutingTrace trace_;
    std::vector<double> bars_;
    std::set<int> highlighted_;
    bool shows_scores_ = false;
    std::vector<int> module_sites_, module_top_;
};

}  // namespace phatgoose::ui
