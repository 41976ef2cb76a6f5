#pragma once
// A legend for plots coloured by expert, beside the plot rather than inside it: one row per expert shown
// (palette swatch, full name, and how many cells or bars it colours), scrollable, so that names are never
// cut however many experts a large library brings. Hovering a row shows the name in full.
#include <QListWidget>
#include <vector>

namespace phatgoose::ui {

class ExpertLegend : public QListWidget {
    Q_OBJECT
public:
    struct Entry {
        int expert;  // library index (the palette colour)
        QString name;
        int count;  // cells or bars it colours
    };
    explicit ExpertLegend(QWidget* parent = nullptr);
    // Entries are listed by count, largest first (ties by library order); `unit` is plural ("cells").
    void setEntries(std::vector<Entry> entries, const QString& unit);
    const std::vector<Entry>& entries() const { return entries_; }
    QSize sizeHint() const override;

private:
    std::vector<Entry> entries_;
};

}  // namespace phatgoose::ui
