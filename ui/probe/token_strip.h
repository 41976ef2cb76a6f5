#pragma once
// A row of token pieces drawn as chips (one rich-text label, so long sequences wrap); clicking a chip picks
// that token, and the picked one is outlined.
#include <QLabel>
#include <QStringList>

namespace phatgoose::ui {

class TokenStrip : public QLabel {
    Q_OBJECT
public:
    explicit TokenStrip(QWidget* parent = nullptr);
    void setPieces(const QStringList& pieces);
    void setSelected(int token);  // -1: none
    const QStringList& pieces() const { return pieces_; }
    int selected() const { return selected_; }

Q_SIGNALS:
    void tokenClicked(int token);

private:
    void render();
    QStringList pieces_;
    int selected_ = -1;
};

}  // namespace phatgoose::ui
