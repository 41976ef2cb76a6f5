#include "ui/probe/routing_method_picker.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QSpinBox>
#include <QToolButton>

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

void RoutingMethodPicker::updateEnabled() {
    const RoutingMethod& m = methodNamed(method());
    expert_->setEnabled(m.names_an_expert && expert_->count() > 0);
    top_k_->setEnabled(m.uses_top_k);
}

}  // namespace phatgoose::ui
