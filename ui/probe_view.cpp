#include "ui/probe_view.h"

#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "ui/routing_heatmap.h"

namespace phatgoose::ui {

ProbeView::ProbeView(QWidget* parent) : QWidget(parent) {
    prompt_ = new QLineEdit(tr("reverse the word apple"), this);
    method_ = new QComboBox(this);
    method_->addItems({"phatgoose", "arrow", "merge", "single", "base"});
    top_k_ = new QSpinBox(this);
    top_k_->setRange(1, 64);
    top_k_->setValue(2);
    max_tokens_ = new QSpinBox(this);
    max_tokens_->setRange(1, 512);
    max_tokens_->setValue(16);
    run_ = new QPushButton(tr("Run"), this);
    output_ = new QLabel(this);
    output_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    site_ = new QComboBox(this);
    heatmap_ = new RoutingHeatmap(this);

    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Prompt"), this));
    controls->addWidget(prompt_, 1);
    controls->addWidget(new QLabel(tr("Method"), this));
    controls->addWidget(method_);
    controls->addWidget(new QLabel(tr("k"), this));
    controls->addWidget(top_k_);
    controls->addWidget(new QLabel(tr("Max tokens"), this));
    controls->addWidget(max_tokens_);
    controls->addWidget(run_);
    auto* form = new QFormLayout;
    form->addRow(tr("Output"), output_);
    form->addRow(tr("Module"), site_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addLayout(form);
    layout->addWidget(heatmap_, 1);

    connect(run_, &QPushButton::clicked, this, &ProbeView::request);
    connect(prompt_, &QLineEdit::returnPressed, this, &ProbeView::request);
    connect(site_, &QComboBox::currentTextChanged, heatmap_, &RoutingHeatmap::showSite);
}

void ProbeView::setPrompt(const QString& prompt) {
    prompt_->setText(prompt);
}
void ProbeView::setMethod(const QString& method) {
    method_->setCurrentText(method);
}

void ProbeView::request() {
    ProbeRequest r;
    r.prompt = prompt_->text();
    r.method = method_->currentText();
    r.top_k = top_k_->value();
    r.max_new_tokens = max_tokens_->value();
    Q_EMIT probeRequested(r);
}

void ProbeView::setBusy(bool busy) {
    run_->setEnabled(!busy);
}

void ProbeView::showResult(const ProbeResult& result) {
    output_->setText(result.output.isEmpty() ? tr("(empty)") : result.output);
    heatmap_->setTrace(result.trace);
    const QString current = site_->currentText();
    site_->blockSignals(true);
    site_->clear();
    for (const auto& s : result.trace.sites) site_->addItem(QString::fromStdString(s.site));
    site_->blockSignals(false);
    const int keep = site_->findText(current);
    site_->setCurrentIndex(keep >= 0 ? keep : 0);
    heatmap_->showSite(site_->currentText());
    Q_EMIT resultShown();
}

}  // namespace phatgoose::ui
