#include "ui/plot/expert_legend.h"

#include <QPainter>
#include <QPixmap>
#include <algorithm>

#include "ui/plot/expert_palette.h"

namespace phatgoose::ui {
namespace {

QIcon swatch(const QColor& colour) {
    QPixmap pixmap(14, 14);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setPen(colour.darker(140));
    painter.setBrush(colour);
    painter.drawRect(1, 1, 12, 12);
    return QIcon(pixmap);
}

}  // namespace

ExpertLegend::ExpertLegend(QWidget* parent) : QListWidget(parent) {
    setSelectionMode(QAbstractItemView::NoSelection);
    setFocusPolicy(Qt::NoFocus);
    setTextElideMode(Qt::ElideNone);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    setUniformItemSizes(true);
}

void ExpertLegend::setEntries(std::vector<Entry> entries, const QString& unit) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.count != b.count ? a.count > b.count : a.expert < b.expert;
    });
    entries_ = std::move(entries);
    clear();
    for (const Entry& e : entries_) {
        // "1 module", "3 modules": the unit is given in the plural.
        const QString units = e.count == 1 && unit.endsWith('s') ? unit.chopped(1) : unit;
        auto* item = new QListWidgetItem(swatch(expertColor(e.expert)),
                                         tr("%1  (%2 %3)").arg(e.name).arg(e.count).arg(units), this);
        item->setToolTip(e.name);
    }
    updateGeometry();
}

QSize ExpertLegend::sizeHint() const {
    // Wide enough for the longest row, within reason; the list scrolls beyond that.
    const int text = sizeHintForColumn(0);
    return QSize(std::clamp(text + 30, 140, 320), QListWidget::sizeHint().height());
}

}  // namespace phatgoose::ui
