#pragma once
// A routing configuration as controls: the method (every method the engine knows), the expert for `single`
// (from the open library), k for the token-wise methods, the experts to leave out (what-if: route as if
// the library lacked them) and an expert pinned on a span of tokens (what-if: that expert alone there).
// Controls that do not apply are disabled.
#include <QString>
#include <QStringList>
#include <QWidget>

#include "ui/engine_messages.h"

class QCheckBox;
class QComboBox;
class QMenu;
class QToolButton;
class QSpinBox;

namespace phatgoose::ui {

class RoutingMethodPicker : public QWidget {
    Q_OBJECT
public:
    explicit RoutingMethodPicker(QWidget* parent = nullptr);
    void setExpertNames(const QStringList& names);
    void setMethod(const QString& method);
    void setTopK(int k);
    void setExpert(const QString& name);
    QString method() const;
    QString expert() const;        // empty unless the method is `single`
    QStringList excluded() const;  // library order
    void setExcluded(const QStringList& names);
    QToolButton* excludeButton() const { return exclude_; }
    // Inactive (no expert) unless the user chose one; only the token-wise methods take it.
    TokenPin pin() const;
    void setPin(const TokenPin& pin);
    QToolButton* pinButton() const { return pin_; }
    // Views that route whole datasets have no token positions to pin: they hide the control.
    void setPinAvailable(bool available);
    // The request's method, expert, k, exclusions and pin from the controls.
    void applyTo(ProbeRequest& request) const;
    int topK() const;
    QComboBox* methodBox() const { return method_; }
    QComboBox* expertBox() const { return expert_; }
    QSpinBox* topKBox() const { return top_k_; }

Q_SIGNALS:
    void changed();

private:
    void updateEnabled();
    void updateExcludeText();
    void updatePinText();
    bool methodUsesTopK() const;
    QToolButton* makePinControls();
    QComboBox* method_;
    QToolButton* exclude_;
    QMenu* exclude_menu_;
    QToolButton* pin_;
    QComboBox* pin_expert_;  // "(none)" first
    QSpinBox* pin_first_;
    QSpinBox* pin_last_;  // -1 shown as "end"
    QCheckBox* pin_output_;
    bool pin_available_ = true;
    QComboBox* expert_;
    QSpinBox* top_k_;
    int wanted_k_ = 2;  // the k asked for, restored when a larger library replaces a smaller one
};

// "phatgoose, k = 2, without count, qa pinned on tokens 3-7": a request's routing in one line, for the views
// that show which configuration produced an output.
QString describeRouting(const ProbeRequest& request);

}  // namespace phatgoose::ui
