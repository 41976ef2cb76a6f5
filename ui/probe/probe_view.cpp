#include "ui/probe/probe_view.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>
#include <set>

#include "ui/probe/gate_scores_view.h"
#include "ui/probe/routing_heatmap.h"
#include "ui/probe/routing_method_picker.h"
#include "ui/probe/token_strip.h"
#include "ui/probe/trace_export.h"

namespace phatgoose::ui {
namespace {

QStringList piecesOf(const std::vector<std::string>& pieces) {
    QStringList out;
    for (const auto& p : pieces) out << QString::fromStdString(p);
    return out;
}

// Sets a combo's items without emitting, keeping `current` selected where it still exists.
void refill(QComboBox* box, const QStringList& items, const QString& current) {
    const QSignalBlocker block(box);
    box->clear();
    box->addItems(items);
    box->setCurrentIndex(std::max(0, box->findText(current)));
}

}  // namespace

ProbeView::ProbeView(QWidget* parent) : QWidget(parent) {
    heatmap_ = new RoutingHeatmap(this);
    gate_scores_ = new GateScoresView(this);
    output_ = new QLabel(this);
    output_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    input_tokens_ = new TokenStrip(this);
    output_tokens_ = new TokenStrip(this);
    input_tokens_->setToolTip(tr("The prompt's tokens (encoder positions); click one to select it"));
    output_tokens_->setToolTip(
        tr("The decoder's inputs: the start token, then every generated token but the last; click one to "
           "select it"));

    auto* tokens = new QFormLayout;
    tokens->addRow(tr("<b>Output</b>"), output_);
    tokens->addRow(tr("<b>Encoder tokens</b>"), input_tokens_);
    tokens->addRow(tr("<b>Decoder tokens</b>"), output_tokens_);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(heatmap_);
    split->addWidget(gate_scores_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    split->setSizes({3000, 2000});  // proportions: the splitter scales them to its width
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(buildControls());
    layout->addLayout(tokens);
    layout->addWidget(buildModulePicker());
    layout->addWidget(split, 1);

    connect(heatmap_, &RoutingHeatmap::tokenSelected, this, &ProbeView::selectToken);
    connect(heatmap_, &RoutingHeatmap::moduleSelected, this, &ProbeView::selectSite);
    connect(input_tokens_, &TokenStrip::tokenClicked, this, [this](int t) { selectToken(false, t); });
    connect(output_tokens_, &TokenStrip::tokenClicked, this, [this](int t) { selectToken(true, t); });
}

QWidget* ProbeView::buildControls() {
    auto* box = new QWidget(this);
    prompt_ = new QLineEdit(tr("reverse the word apple"), box);
    picker_ = new RoutingMethodPicker(box);
    max_tokens_ = new QSpinBox(box);
    max_tokens_->setRange(1, 512);
    max_tokens_->setValue(16);
    max_tokens_->setToolTip(
        tr("Tokens to generate, greedily: the probe traces one sequence, so beam search "
           "(phatgoose generate --beams) is not offered here"));
    run_ = new QPushButton(tr("Run"), box);
    save_trace_ = new QPushButton(tr("Save trace..."), box);
    save_trace_->setToolTip(
        tr("Save the routing trace (every module's kept experts, weights and scores) as JSON"));
    save_trace_->setEnabled(false);
    auto* row = new QHBoxLayout(box);
    row->setContentsMargins(0, 0, 0, 0);
    row->addWidget(new QLabel(tr("Prompt"), box));
    row->addWidget(prompt_, 1);
    row->addWidget(new QLabel(tr("Method"), box));
    row->addWidget(picker_);
    row->addWidget(new QLabel(tr("Max new tokens (greedy)"), box));
    row->addWidget(max_tokens_);
    row->addWidget(run_);
    row->addWidget(save_trace_);
    connect(run_, &QPushButton::clicked, this, &ProbeView::request);
    connect(prompt_, &QLineEdit::returnPressed, this, &ProbeView::request);
    connect(save_trace_, &QPushButton::clicked, this, &ProbeView::saveTraceInteractively);
    return box;
}

QWidget* ProbeView::buildModulePicker() {
    auto* box = new QWidget(this);
    stack_ = new QComboBox(box);
    stack_->addItems({tr("Encoder"), tr("Decoder")});
    layer_ = new QComboBox(box);
    kind_ = new QComboBox(box);
    kind_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    kind_->setMinimumContentsLength(18);
    site_ = new QComboBox(box);
    site_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    site_->setToolTip(tr("The module's full path"));
    view_ = new QComboBox(box);
    view_->addItems({tr("Experts x tokens at this module"), tr("Top-1 expert x modules")});
    scope_ = new QComboBox(box);
    scope_->addItems({tr("this kind in every layer"), tr("every module")});
    scope_->setEnabled(false);
    expert_filter_ = new QLineEdit(box);
    expert_filter_->setPlaceholderText(tr("Find experts..."));
    expert_filter_->setClearButtonEnabled(true);
    expert_filter_->setToolTip(
        tr("Show only the experts whose name contains this text (heatmap rows and "
           "score bars)"));
    expert_limit_ = new QSpinBox(box);
    expert_limit_->setRange(0, 100000);
    expert_limit_->setValue(RoutingHeatmap::kDefaultExpertLimit);
    expert_limit_->setSpecialValueText(tr("all"));
    expert_limit_->setPrefix(tr("top "));
    expert_limit_->setToolTip(
        tr("Heatmap rows: the experts with the largest weight anywhere in this prompt at "
           "this module; 'all' shows every expert (the plot scrolls)"));
    auto* row = new QHBoxLayout(box);
    row->setContentsMargins(0, 0, 0, 0);
    row->addWidget(new QLabel(tr("<b>Module</b>"), box));
    row->addWidget(stack_);
    row->addWidget(new QLabel(tr("layer"), box));
    row->addWidget(layer_);
    row->addWidget(kind_);
    row->addWidget(site_);
    row->addStretch(1);
    row->addWidget(new QLabel(tr("<b>View</b>"), box));
    row->addWidget(view_);
    row->addWidget(scope_);
    row->addWidget(new QLabel(tr("<b>Experts</b>"), box));
    row->addWidget(expert_limit_);
    row->addWidget(expert_filter_);
    connect(expert_filter_, &QLineEdit::textChanged, this, [this](const QString& text) {
        heatmap_->setExpertFilter(text);
        gate_scores_->setExpertFilter(text);
    });
    connect(expert_limit_, &QSpinBox::valueChanged, heatmap_, &RoutingHeatmap::setExpertLimit);
    for (QComboBox* c : {stack_, layer_, kind_})
        connect(c, &QComboBox::currentIndexChanged, this, &ProbeView::pickerChanged);
    connect(site_, &QComboBox::currentIndexChanged, this, &ProbeView::siteChanged);
    connect(view_, &QComboBox::currentIndexChanged, this, [this](int mode) {
        scope_->setEnabled(mode == 1);
        heatmap_->setMode(mode == 1 ? RoutingHeatmap::Mode::TopExpert : RoutingHeatmap::Mode::ExpertWeights);
        showSelection();
    });
    connect(scope_, &QComboBox::currentIndexChanged, this, [this](int scope) {
        heatmap_->setScope(scope == 1 ? RoutingHeatmap::Scope::EveryModule : RoutingHeatmap::Scope::SameKind);
        showSelection();
    });
    return box;
}

QString ProbeView::prompt() const {
    return prompt_->text();
}

void ProbeView::suggestPrompt(const QString& prompt) {
    if (!prompt_->isModified())
        prompt_->setText(prompt);  // setText clears the flag: later suggestions still apply
}

// A prompt set on purpose (Open in probe, a test, a run) is the user's: a workspace's example, which may
// arrive later from the engine thread, no longer replaces it.
void ProbeView::setPrompt(const QString& prompt) {
    prompt_->setText(prompt);
    prompt_->setModified(true);
}
void ProbeView::setMethod(const QString& method) {
    picker_->setMethod(method);
}
void ProbeView::setExpertNames(const QStringList& names) {
    picker_->setExpertNames(names);
}

void ProbeView::request() {
    ProbeRequest r;
    r.prompt = prompt_->text();
    prompt_->setModified(true);  // the field now shows what was run
    picker_->applyTo(r);
    r.max_new_tokens = max_tokens_->value();
    Q_EMIT probeRequested(r);
}

void ProbeView::setBusy(bool busy) {
    run_->setEnabled(!busy);
}

void ProbeView::showResult(const ProbeResult& result) {
    trace_ = result.trace;
    output_->setText(result.output.isEmpty() ? tr("(empty)") : result.output.toHtmlEscaped());
    input_tokens_->setPieces(piecesOf(trace_.encoder_pieces));
    output_tokens_->setPieces(piecesOf(trace_.decoder_pieces));
    save_trace_->setEnabled(true);
    selected_[0] = trace_.encoder_pieces.empty() ? -1 : 0;
    selected_[1] = trace_.decoder_pieces.empty() ? -1 : 0;
    heatmap_->setTrace(trace_);
    gate_scores_->setTrace(trace_);
    fillSites();
    Q_EMIT resultShown();
}

void ProbeView::fillSites() {
    const QString current = site_->currentText();
    QStringList paths;
    for (const auto& s : trace_.sites) paths << QString::fromStdString(s.site);
    refill(site_, paths, current);
    siteChanged();
}

void ProbeView::selectSite(const QString& site) {
    const int index = site_->findText(site);
    if (index >= 0 && index != site_->currentIndex()) site_->setCurrentIndex(index);  // emits siteChanged
}

void ProbeView::siteChanged() {
    const int index = site_->currentIndex();
    if (index < 0 || index >= int(trace_.sites.size())) {
        gate_scores_->clear();
        return;
    }
    fillPickers(trace_.sites[size_t(index)]);
    heatmap_->showSite(site_->currentText());
    showSelection();
}

// The layer and kind lists follow the chosen stack (the decoder has cross-attention, the encoder not).
void ProbeView::fillPickers(const SiteRouting& site) {
    const bool decoder = isDecoderModule(site);
    QStringList layers, kinds;
    std::set<int64_t> blocks;
    for (const auto& s : trace_.sites) {
        if (isDecoderModule(s) != decoder) continue;
        blocks.insert(s.block);
        if (s.block == site.block) kinds << QString::fromStdString(s.kind);
    }
    for (int64_t b : blocks) layers << QString::number(b);
    const QSignalBlocker block(stack_);
    stack_->setCurrentIndex(decoder ? 1 : 0);
    refill(layer_, layers, QString::number(site.block));
    refill(kind_, kinds, QString::fromStdString(site.kind));
}

void ProbeView::pickerChanged() {
    const bool decoder = stack_->currentIndex() == 1;
    const int64_t block = layer_->currentText().toLongLong();
    int found = findSite(trace_, decoder, block, kind_->currentText().toStdString());
    for (size_t i = 0; found < 0 && i < trace_.sites.size(); ++i)  // the kind is not in that layer or stack
        if (isDecoderModule(trace_.sites[i]) == decoder &&
            (trace_.sites[i].block == block || sender() == stack_))
            found = int(i);
    if (found >= 0)
        site_->setCurrentIndex(found);
    else if (const int index = site_->currentIndex(); index >= 0)
        fillPickers(trace_.sites[size_t(index)]);
}

void ProbeView::switchToStream(TokenStream stream) {
    const int index = site_->currentIndex();
    const std::string kind = index >= 0 ? trace_.sites[size_t(index)].kind : std::string();
    std::vector<int> candidates = sitesOfStream(trace_, stream, kind);
    if (candidates.empty()) candidates = sitesOfStream(trace_, stream);
    if (!candidates.empty()) site_->setCurrentIndex(candidates.front());
}

void ProbeView::selectToken(bool decoder_tokens, int token) {
    selected_[decoder_tokens ? 1 : 0] = token;
    const TokenStream stream = decoder_tokens ? TokenStream::Decoder : TokenStream::Encoder;
    if (heatmap_->stream() != stream) switchToStream(stream);  // shows the selection itself
    showSelection();
}

void ProbeView::showSelection() {
    input_tokens_->setSelected(selected_[0]);
    output_tokens_->setSelected(selected_[1]);
    const int token = selected_[heatmap_->stream() == TokenStream::Decoder ? 1 : 0];
    heatmap_->selectToken(token);
    gate_scores_->showToken(site_->currentText(), token);
}

bool ProbeView::saveTrace(const QString& file, QString* error) const {
    return saveTraceJson(trace_, file, error);
}

void ProbeView::saveTraceInteractively() {
    QString file = QFileDialog::getSaveFileName(this, tr("Save routing trace"), "routing_trace.json",
                                                tr("JSON (*.json)"));
    if (file.isEmpty()) return;
    if (!file.endsWith(".json", Qt::CaseInsensitive)) file += ".json";
    QString error;
    if (!saveTrace(file, &error))
        QMessageBox::warning(this, tr("Save routing trace"), tr("Could not save the trace.\n%1").arg(error));
}

}  // namespace phatgoose::ui
