#include "ui/probe/routing_method_picker.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QSpinBox>
#include <QToolButton>
#include <QWidgetAction>

#include "routing/routing_methods.h"

namespace phatgoose::ui {

RoutingMethodPicker::RoutingMethodPicker(QWidget* parent) : QWidget(parent) {
    method_ = new QComboBox(this);
    QStringList tips;
    for (const RoutingMethod& m : routingMethods()) {
        const QString name = QString::fromStdString(m.name);
        method_->addItem(name);
        method_->setItemData(method_->count() - 1, QString::fromStdString(m.label + ": " + m.description),
                             Qt::ToolTipRole);
        tips << name + ": " + QString::fromStdString(m.description);
    }
    method_->setCurrentText(QString::fromStdString(defaultRoutingMethod()));
    method_->setToolTip(tr("Routing method.") + "\n" + tips.join("\n"));
    expert_ = new QComboBox(this);
    expert_->setToolTip(tr("The expert that `single` applies everywhere"));
    expert_->setMinimumContentsLength(8);
    top_k_ = new QSpinBox(this);
    top_k_->setRange(1, 64);
    top_k_->setValue(int(RoutingSpec{}.top_k));
    top_k_->setToolTip(tr("Experts kept per token and module (token-wise methods)"));
    exclude_ = new QToolButton(this);
    exclude_menu_ = new QMenu(exclude_);
    exclude_->setMenu(exclude_menu_);
    exclude_->setPopupMode(QToolButton::InstantPopup);
    // Room for the longest label beside the menu arrow, so that the label never gets clipped.
    exclude_->setMinimumWidth(exclude_->fontMetrics().horizontalAdvance(tr("excluding %n", nullptr, 99)) +
                              28);
    exclude_->setToolTip(
        tr("Route as if the library lacked the checked experts (the others are re-normalised)"));
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(method_);
    layout->addWidget(new QLabel(tr("expert"), this));
    layout->addWidget(expert_);
    layout->addWidget(new QLabel(tr("k"), this));
    layout->addWidget(top_k_);
    layout->addWidget(exclude_);
    layout->addWidget(makePinControls());
    connect(method_, &QComboBox::currentTextChanged, this, [this] {
        updateEnabled();
        Q_EMIT changed();
    });
    connect(expert_, &QComboBox::currentTextChanged, this, &RoutingMethodPicker::changed);
    connect(top_k_, &QSpinBox::valueChanged, this, [this](int k) {
        wanted_k_ = k;
        Q_EMIT changed();
    });
    updateEnabled();
    updateExcludeText();
    updatePinText();
}

// A button whose popup holds the pin's form: the expert, the span of input tokens, and whether generated
// tokens are pinned too.
QToolButton* RoutingMethodPicker::makePinControls() {
    pin_ = new QToolButton(this);
    pin_->setPopupMode(QToolButton::InstantPopup);
    pin_->setToolTip(
        tr("What-if: one expert takes every module, with weight 1, for a span of input tokens "
           "(token-wise methods)"));
    auto* form_widget = new QWidget(pin_);
    auto* form = new QFormLayout(form_widget);
    pin_expert_ = new QComboBox(form_widget);
    pin_expert_->addItem(tr("(none)"));
    pin_first_ = new QSpinBox(form_widget);
    pin_first_->setRange(0, 4096);
    pin_first_->setToolTip(tr("The first pinned input token (0 is the first token)"));
    pin_last_ = new QSpinBox(form_widget);
    pin_last_->setRange(-1, 4096);
    pin_last_->setSpecialValueText(tr("end"));
    pin_last_->setValue(-1);
    pin_last_->setToolTip(tr("The last pinned input token, inclusive"));
    pin_output_ = new QCheckBox(tr("also every generated token"), form_widget);
    form->addRow(tr("Pin expert"), pin_expert_);
    form->addRow(tr("from token"), pin_first_);
    form->addRow(tr("to token"), pin_last_);
    form->addRow(pin_output_);
    auto* menu = new QMenu(pin_);
    auto* action = new QWidgetAction(menu);
    action->setDefaultWidget(form_widget);
    menu->addAction(action);
    pin_->setMenu(menu);
    auto changedPin = [this] {
        updatePinText();
        Q_EMIT changed();
    };
    connect(pin_expert_, &QComboBox::currentIndexChanged, this, changedPin);
    connect(pin_first_, &QSpinBox::valueChanged, this, [this, changedPin](int first) {
        if (pin_last_->value() >= 0 && pin_last_->value() < first) pin_last_->setValue(first);
        changedPin();
    });
    connect(pin_last_, &QSpinBox::valueChanged, this, [this, changedPin](int last) {
        if (last >= 0 && last < pin_first_->value()) pin_first_->setValue(last);
        changedPin();
    });
    connect(pin_output_, &QCheckBox::toggled, this, changedPin);
    return pin_;
}

TokenPin RoutingMethodPicker::pin() const {
    TokenPin pin;
    if (pin_expert_->currentIndex() <= 0 || !pin_available_) return pin;
    pin.expert = pin_expert_->currentText().toStdString();
    pin.first = pin_first_->value();
    pin.last = pin_last_->value();
    pin.output_tokens = pin_output_->isChecked();
    return pin;
}

void RoutingMethodPicker::setPin(const TokenPin& pin) {
    {
        const QSignalBlocker a(pin_expert_), b(pin_first_), c(pin_last_), d(pin_output_);
        const int index = pin.active() ? pin_expert_->findText(QString::fromStdString(pin.expert)) : 0;
        pin_expert_->setCurrentIndex(std::max(index, 0));
        pin_first_->setValue(int(pin.first));
        pin_last_->setValue(int(pin.last));
        pin_output_->setChecked(pin.output_tokens);
    }
    updatePinText();
    Q_EMIT changed();
}

void RoutingMethodPicker::setPinAvailable(bool available) {
    pin_available_ = available;
    pin_->setHidden(!available);
}

void RoutingMethodPicker::updatePinText() {
    const TokenPin p = pin();
    if (!p.active()) {
        pin_->setText(tr("pin: none"));
        return;
    }
    const QString span = p.last < 0 ? QString("%1-").arg(p.first) : QString("%1-%2").arg(p.first).arg(p.last);
    pin_->setText(tr("pin: %1 %2%3").arg(QString::fromStdString(p.expert), span, p.output_tokens ? "+" : ""));
}

void RoutingMethodPicker::applyTo(ProbeRequest& request) const {
    request.method = method();
    request.expert = expert();
    request.top_k = topK();
    request.exclude = excluded();
    request.pin = methodUsesTopK() ? pin() : TokenPin{};
}

void RoutingMethodPicker::setExpertNames(const QStringList& names) {
    const QStringList was_excluded = excluded();
    exclude_menu_->clear();
    for (const QString& name : names) {
        QAction* action = exclude_menu_->addAction(name);
        action->setCheckable(true);
        action->setChecked(was_excluded.contains(name));
        connect(action, &QAction::toggled, this, [this] {
            updateExcludeText();
            Q_EMIT changed();
        });
    }
    updateExcludeText();
    const QString pinned = pin_expert_->currentText();
    {
        const QSignalBlocker quiet(pin_expert_);
        pin_expert_->clear();
        pin_expert_->addItem(tr("(none)"));
        pin_expert_->addItems(names);
        pin_expert_->setCurrentIndex(std::max(pin_expert_->findText(pinned), 0));
    }
    updatePinText();
    const QString current = expert_->currentText();
    expert_->clear();
    expert_->addItems(names);
    if (names.contains(current)) expert_->setCurrentText(current);
    if (!names.isEmpty()) {  // an empty list (a model without experts yet) leaves k alone
        const QSignalBlocker quiet(top_k_);
        top_k_->setMaximum(int(names.size()));
        top_k_->setValue(std::min(wanted_k_, int(names.size())));
    }
    updateEnabled();
}

QStringList RoutingMethodPicker::excluded() const {
    QStringList names;
    for (const QAction* a : exclude_menu_->actions())
        if (a->isChecked()) names << a->text();
    return names;
}

void RoutingMethodPicker::setExcluded(const QStringList& names) {
    for (QAction* a : exclude_menu_->actions()) {
        const QSignalBlocker quiet(a);
        a->setChecked(names.contains(a->text()));
    }
    updateExcludeText();
    Q_EMIT changed();
}

void RoutingMethodPicker::updateExcludeText() {
    const int n = int(excluded().size());
    exclude_->setText(n == 0 ? tr("exclude: none") : tr("excluding %n", nullptr, n));
    exclude_->setEnabled(!exclude_menu_->actions().isEmpty());
}

void RoutingMethodPicker::setMethod(const QString& method) {
    method_->setCurrentText(method);
}
void RoutingMethodPicker::setTopK(int k) {
    top_k_->setValue(k);
}
void RoutingMethodPicker::setExpert(const QString& name) {
    expert_->setCurrentText(name);
}

QString RoutingMethodPicker::method() const {
    return method_->currentText();
}
namespace {
const RoutingMethod& methodNamed(const QString& name) {
    return routingMethod(name.toStdString());
}
}  // namespace

QString RoutingMethodPicker::expert() const {
    return methodNamed(method()).names_an_expert ? expert_->currentText() : QString();
}
int RoutingMethodPicker::topK() const {
    return top_k_->value();
}

bool RoutingMethodPicker::methodUsesTopK() const {
    return methodNamed(method()).uses_top_k;
}

void RoutingMethodPicker::updateEnabled() {
    const RoutingMethod& m = methodNamed(method());
    expert_->setEnabled(m.names_an_expert && expert_->count() > 0);
    top_k_->setEnabled(m.uses_top_k);
    pin_->setEnabled(m.uses_top_k && pin_expert_->count() > 1);
}

QString describeRouting(const ProbeRequest& r) {
    const RoutingMethod* m = findRoutingMethod(r.method.toStdString());
    QStringList parts{r.method};
    if (m && m->names_an_expert && !r.expert.isEmpty()) parts.back() += " " + r.expert;
    if (m && m->uses_top_k) parts << QString("k = %1").arg(r.top_k);
    if (!r.exclude.isEmpty()) parts << QObject::tr("without %1").arg(r.exclude.join(", "));
    if (r.pin.active()) {
        const TokenPin& p = r.pin;
        QString span = p.last < 0 ? QObject::tr("tokens %1 to the end").arg(p.first)
                                  : QObject::tr("tokens %1-%2").arg(p.first).arg(p.last);
        if (p.output_tokens) span += QObject::tr(" and every output token");
        parts << QObject::tr("%1 pinned on %2").arg(QString::fromStdString(p.expert), span);
    }
    return parts.join(", ");
}

}  // namespace phatgoose::ui
