#pragma once
// A routing configuration as controls: the method (every method the engine knows), the expert for `single`
// (from the open library), k for the token-wise methods, and the experts to leave out (what-if: route as if
// the library lacked them). Controls that do not apply are disabled.
#include <QString>
#include <QStringList>
#include <QWidget>

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
    int topK() const;
    QComboBox* methodBox() const { return method_; }
    QComboBox* expertBox() const { return expert_; }
    QSpinBox* topKBox() const { return top_k_; }

Q_SIGNALS:
    void changed();

private:
    void updateEnabled();
    void updateExcludeText();
    QComboBox* method_;
    QToolButton* exclude_;
    QMenu* exclude_menu_;
    QComboBox* expert_;
    QSpinBox* top_k_;
    int wanted_k_ = 2;  // the k asked for, restored when a larger library replaces a smaller one
};

}  // namespace phatgoose::ui
