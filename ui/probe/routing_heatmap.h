#pragma once
// The routing of one probe as a heatmap (QCPColorMap + QCPColorScale), in two modes:
//  - ExpertWeights: experts x tokens at one module; a cell is the routing weight the token gave the expert.
//    With a large library the rows are the experts that matter for this prompt here: the N with the
//    largest weight anywhere in it (N adjustable, 0 for all, then the plot scrolls), narrowed by a name
//    filter, in library order with a line between name-prefix groups ("P3...", "Flanv2zs...").
//  - TopExpert: tokens x modules (every layer's module of one kind, or every module) of one token stream;
//    a cell is coloured by the token's top-1 expert there. The colour scale names the experts while they
//    fit; beyond that a scrollable legend beside the plot lists the experts drawn, with their cell counts.
// Encoder and decoder tokens are never mixed: a module's rows are encoder positions (encoder modules and the
// decoder's cross-attention k, v) or decoder positions. Hovering a cell explains it; clicking picks a token.
#include <QWidget>

#include "routing/routing_trace.h"
#include "ui/probe/trace_queries.h"

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPItemRect;
class QCPItemText;
class QCPTextElement;
class QMouseEvent;
class QScrollArea;

namespace phatgoose::ui {

class ExpertLegend;

// The group of an expert name: the part before the first '_', '-' or '.', or before the first capital
// letter after the start ("P3Socialiqa" -> "P3", "Flanv2zsAnli" -> "Flanv2zs"); "" when there is none.
QString namePrefix(const QString& name);

class RoutingHeatmap : public QWidget {
    Q_OBJECT
public:
    enum class Mode { ExpertWeights, TopExpert };
    enum class Scope { SameKind, EveryModule };  // TopExpert's rows

    explicit RoutingHeatmap(QWidget* parent = nullptr);
    void setTrace(const phatgoose::RoutingTrace& trace);
    // The module drawn in ExpertWeights mode; in TopExpert mode it picks the stream and the kind.
    void showSite(const QString& site);
    void setMode(Mode mode);
    void setScope(Scope scope);
    // Outlines a token column of the current stream (-1: none); does not emit tokenSelected.
    void selectToken(int token);
    // ExpertWeights rows: experts whose name contains `text` (case-insensitive; empty: all), at most
    // `limit` of them by largest weight (0: all).
    void setExpertFilter(const QString& text);
    void setExpertLimit(int limit);
    static constexpr int kDefaultExpertLimit = 24;
    // ExpertWeights: the library index of every row, bottom row first.
    const std::vector<int>& rowExperts() const { return row_experts_; }
    // TopExpert with more experts than the colour scale can name: the legend beside the plot.
    ExpertLegend* legend() const { return legend_; }

    Mode mode() const { return mode_; }
    TokenStream stream() const { return stream_; }
    int selectedToken() const { return selected_; }
    QCustomPlot* plot() const { return plot_; }
    // The drawn matrix, [rows][tokens]: ExpertWeights rows are experts (weights), TopExpert rows are modules
    // (library index of the top-1 expert, -1 where the module has no such token).
    const std::vector<std::vector<double>>& cells() const { return cells_; }
    const QStringList& tokenLabels() const { return token_labels_; }
    // TopExpert: the trace's site index of every row, bottom row first.
    const std::vector<int>& rowSites() const { return row_sites_; }
    // The hover text of a cell: token piece, module path, kept experts with weights.
    QString describeCell(int token, int row) const;
    // The cell's centre in the plot widget's coordinates (for clicking it in tests).
    QPoint cellCentre(int token, int row) const;

Q_SIGNALS:
    void tokenSelected(bool decoder_tokens, int token);
    void moduleSelected(const QString& site);  // TopExpert: the row of a clicked cell

private:
    void redraw();
    void drawWeights(const SiteRouting& site);
    void drawTopExperts();
    void drawEmpty(const QString& why);
    std::vector<int> expertsToShow(const SiteRouting& site) const;
    void markGroups();
    void fitRows(int rows);
    void setTokenAxis(int tokens);
    void fillMap(int rows, int tokens);
    void placeSelection();
    bool cellAt(const QPointF& pixel, int* token, int* row) const;
    const SiteRouting* siteOfRow(int row) const;
    void hover(QMouseEvent* event);
    void click(QMouseEvent* event);

    QCustomPlot* plot_;
    QScrollArea* scroll_;
    ExpertLegend* legend_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    QCPTextElement* title_;
    QCPItemRect* selection_;
    QCPItemRect* current_row_;  // TopExpert: the module chosen in the probe's module picker
    QCPItemText* message_;
    phatgoose::RoutingTrace trace_;
    int site_ = -1;  // index into trace_.sites
    Mode mode_ = Mode::ExpertWeights;
    Scope scope_ = Scope::SameKind;
    TokenStream stream_ = TokenStream::Encoder;
    int selected_ = -1;
    std::vector<std::vector<double>> cells_;
    QStringList token_labels_;
    std::vector<int> row_sites_;
    std::vector<int> row_experts_;
    QString expert_filter_;
    int expert_limit_ = kDefaultExpertLimit;
};

}  // namespace phatgoose::ui
