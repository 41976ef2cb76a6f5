#include "ui/probe/token_strip.h"

namespace phatgoose::ui {

TokenStrip::TokenStrip(QWidget* parent) : QLabel(parent) {
    setWordWrap(true);
    setTextFormat(Qt::RichText);
    setTextInteractionFlags(Qt::LinksAccessibleByMouse);
    connect(this, &QLabel::linkActivated, this, [this](const QString& link) {
        const int token = link.toInt();
        setSelected(token);
        Q_EMIT tokenClicked(token);
    });
}

void TokenStrip::setPieces(const QStringList& pieces) {
    pieces_ = pieces;
    selected_ = -1;
    render();
}

void TokenStrip::setSelected(int token) {
    selected_ = token;
    render();
}

void TokenStrip::render() {
    if (pieces_.isEmpty()) {
        setText(tr("<i>(none)</i>"));
        return;
    }
    // QLabel's rich text has no borders or padding on spans: non-breaking spaces pad the chip, and the picked
    // token is set apart by a darker background and bold type.
    QString html;
    for (int t = 0; t < pieces_.size(); ++t) {
        const bool picked = t == selected_;
        html += QString(
                    "<a href=\"%1\" style=\"text-decoration:none; color:%2; background-color:%3;%4\">"
                    "&nbsp;%5&nbsp;</a> ")
                    .arg(t)
                    .arg(picked ? "#ffffff" : "#202020", picked ? "#1f5fa8" : "#dde6f0",
                         picked ? " font-weight:bold;" : "", pieces_[t].toHtmlEscaped());
    }
    setText(html);
}

}  // namespace phatgoose::ui
