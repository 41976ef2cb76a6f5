#include "ui/probe/compare_view.h"

#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include "routing/routing_methods.h"

#include "ui/plot/plot_decorations.h"
#include "ui/plot/plot_export.h"
#include "ui/plot/qcustomplot_include.h"
#include "ui/probe/difference_heatmap.h"
#include "ui/probe/routing_method_picker.h"
#include "ui/probe/trace_queries.h"

namespace phatgoose::ui {
namespace {

// The requested configuration (with its exclusions and pin) when the trace is its answer, else what the
// trace itself records.
QString configName(const phatgoose::RoutingTrace& t, const ProbeRequest& requested) {
    if (requested.method.toStdString() == t.method) return describeRouting(requested);
    const QString method = QString::fromStdString(t.method);
    const phatgoose::RoutingMethod* m = phatgoose::findRoutingMethod(t.method);
    return t.top_k > 0 && m && m->uses_top_k ? QString("%1, k = %2").arg(method).arg(t.top_k) : method;
}

QCPBars* streamBars(QCustomPlot* plot, const QString& name, const QColor& colour) {
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    bars->setName(name);
    bars->setBrush(colour);
    bars->setPen(QPen(colour.darker(130)));
    bars->setWidth(0.75);
    return bars;
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    output_a_ = new QLabel(this);
    output_b_ = new QLabel(this);
    summary_ = new QLabel(tr("Choose two configurations and press Compare."), this);
    summary_->setWordWrap(true);
    for (QLabel* l : {output_a_, output_b_, summary_}) l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* outputs = new QFormLayout;
    outputs->addRow(tr("<b>Output A</b>"), output_a_);
    outputs->addRow(tr("<b>Output B</b>"), output_b_);
    outputs->addRow(tr("<b>Routing</b>"), summary_);

    bars_plot_ = new QCustomPlot(this);
    bars_title_ =
        addPlotTitle(bars_plot_, tr("Share of compared tokens whose kept experts differ, per module"));
    placeLegendAbove(bars_plot_);
    bars_plot_->xAxis->setTickLabelRotation(90);
    bars_plot_->xAxis->grid()->setVisible(false);
    bars_plot_->xAxis->setTickLabelFont(QFont(font().family(), 7));
    bars_plot_->yAxis->setLabel(tr("tokens differing"));
    bars_plot_->yAxis->setRange(0, 1.05);
    addPlotExportMenu(bars_plot_, "routing_difference_per_module");
    encoder_map_ = new DifferenceHeatmap(TokenStream::Encoder, this);
    decoder_map_ = new DifferenceHeatmap(TokenStream::Decoder, this);

    auto* maps = new QSplitter(Qt::Horizontal, this);
    maps->addWidget(encoder_map_);
    maps->addWidget(decoder_map_);
    auto* plots = new QSplitter(Qt::Vertical, this);
    plots->addWidget(maps);
    plots->addWidget(bars_plot_);
    plots->setStretchFactor(0, 3);
    plots->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(buildControls());
    layout->addLayout(outputs);
    layout->addWidget(plots, 1);
}

QWidget* CompareView::buildControls() {
    auto* box = new QWidget(this);
    prompt_ = new QLineEdit(tr("reverse the word apple"), box);
    picker_a_ = new RoutingMethodPicker(box);
    picker_b_ = new RoutingMethodPicker(box);
    picker_b_->setMethod("arrow");
    max_tokens_ = new QSpinBox(box);
    max_tokens_->setRange(1, 512);
    max_tokens_->setValue(16);
    max_tokens_->setToolTip(tr("Tokens to generate, greedily, under each configuration"));
    run_ = new QPushButton(tr("Compare"), box);
    auto* grid = new QVBoxLayout(box);
    grid->setContentsMargins(0, 0, 0, 0);
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("Prompt"), box));
    top->addWidget(prompt_, 1);
    top->addWidget(new QLabel(tr("Max new tokens (greedy)"), box));
    top->addWidget(max_tokens_);
    top->addWidget(run_);
    auto* configs = new QHBoxLayout;
    configs->addWidget(new QLabel(tr("<b>A</b>"), box));
    configs->addWidget(picker_a_);
    configs->addSpacing(24);
    configs->addWidget(new QLabel(tr("<b>B</b>"), box));
    configs->addWidget(picker_b_);
    configs->addSpacing(24);
    auto* note =
        new QLabel(tr("Encoder positions always correspond. A decoder position is compared only while "
                      "both generated the same tokens before it."),
                   box);
    note->setStyleSheet("color: #555;");
    note->setWordWrap(true);  // the pickers get the room they need; the note takes what is left
    configs->addWidget(note, 1);
    grid->addLayout(top);
    grid->addLayout(configs);
    connect(run_, &QPushButton::clicked, this, &CompareView::request);
    connect(prompt_, &QLineEdit::returnPressed, this, &CompareView::request);
    return box;
}

void CompareView::setBusy(bool busy) {
    run_->setEnabled(!busy);
}
void CompareView::setPrompt(const QString& prompt) {
    prompt_->setText(prompt);
}
void CompareView::setExpertNames(const QStringList& names) {
    picker_a_->setExpertNames(names);
    picker_b_->setExpertNames(names);
}

void CompareView::request() {
    CompareRequest r;
    for (auto [req, picker] : {std::pair{&r.a, picker_a_}, std::pair{&r.b, picker_b_}}) {
        req->prompt = prompt_->text();
        picker->applyTo(*req);
        req->max_new_tokens = max_tokens_->value();
    }
    requested_ = r;
    Q_EMIT compareRequested(r);
}

void CompareView::showResult(const CompareResult& result) {
    const phatgoose::RoutingTrace &a = result.a.trace, &b = result.b.trace;
    difference_ = compareRouting(a, b);
    output_a_->setText(QString("%1 &nbsp; <span style=\"color:#777\">(%2)</span>")
                           .arg(result.a.output.toHtmlEscaped(), configName(a, requested_.a)));
    output_b_->setText(QString("%1 &nbsp; <span style=\"color:#777\">(%2)</span>")
                           .arg(result.b.output.toHtmlEscaped(), configName(b, requested_.b)));
    summary_->setText(summary());
    encoder_map_->setDifference(difference_, a, b);
    decoder_map_->setDifference(difference_, a, b);
    drawBars(a);
    Q_EMIT resultShown();
}

QString CompareView::summary() const {
    const RoutingDifference& d = difference_;
    if (d.modules.empty())
        return tr(
            "No module routes tokens under both configurations (merge and base record no routing), so "
            "there is no routing to compare.");
    QString text =
        tr("Mean overlap of the kept expert sets (Jaccard): <b>%1</b> over %2 module-token pairs; "
           "<b>%3%</b> of them keep different experts. Compared: %4 encoder tokens, %5 of the decoder "
           "tokens (A has %6, B %7)")
            .arg(d.mean_jaccard, 0, 'f', 3)
            .arg(d.compared_pairs)
            .arg(100.0 * d.differing_fraction, 0, 'f', 1)
            .arg(d.encoder_tokens)
            .arg(d.decoder_tokens)
            .arg(d.decoder_tokens_a)
            .arg(d.decoder_tokens_b);
    if (d.decoder_tokens < std::max(d.decoder_tokens_a, d.decoder_tokens_b))
        text += d.decoder_tokens > 1
                    ? tr(": the outputs part after %n generated token(s)", nullptr, d.decoder_tokens - 1)
                    : tr(": the outputs differ from their first token, so only the start position compares");
    text += ".";
    if (!d.only_a.empty() || !d.only_b.empty())
        text += tr(" Modules routed by one configuration only (not compared): A %1, B %2.")
                    .arg(d.only_a.size())
                    .arg(d.only_b.size());
    return text;
}

void CompareView::drawBars(const phatgoose::RoutingTrace& a) {
    QCustomPlot* p = bars_plot_;
    p->clearPlottables();
    module_bars_.clear();
    QCPBars* enc = streamBars(p, tr("modules of encoder tokens"), QColor(70, 120, 190));
    QCPBars* dec = streamBars(p, tr("modules of decoder tokens"), QColor(60, 160, 90));
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int i = 0; i < int(difference_.modules.size()); ++i) {
        const ModuleDifference& m = difference_.modules[size_t(i)];
        module_bars_.push_back(m.differing_fraction);
        (m.decoder_tokens ? dec : enc)->addData(i, m.differing_fraction);
        ticks->addTick(i, shortSiteName(a.sites[size_t(m.site_index_a)]));
    }
    p->xAxis->setTicker(ticks);
    p->xAxis->setRange(-0.6, double(difference_.modules.size()) - 0.4);
    p->replot();
}

}  // namespace phatgoose::ui
