#include "ui/results/accuracy_chart.h"

#include <QFileInfo>
#include <QHash>
#include <QResizeEvent>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <limits>
#include <map>

#include "error.h"
#include "routing/routing_methods.h"
#include "ui/plot/plot_decorations.h"
#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {

namespace {

constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();
constexpr double kTop = 112.0;  // room above 100 % for the held-out band's caption
const QString kHeldIn = QStringLiteral("held-in");
const QString kHeldOut = QStringLiteral("held-out");

double mean(const QList<double>& values) {
    double sum = 0;
    int n = 0;
    for (double v : values)
        if (!std::isnan(v)) sum += v, ++n;
    return n ? sum / n : kNoValue;
}

// Held-in datasets first, then datasets outside the workspace's tasks, then held-out ones, so the
// held-out datasets sit together on one band.
QStringList orderedDatasets(const QStringList& datasets, const QHash<QString, QString>& roles) {
    QStringList out;
    for (const QString& role : {kHeldIn, QString(), kHeldOut})
        for (const QString& d : datasets)
            if (roles.value(d) == role) out << d;
    return out;
}

AccuracyGroup averageGroup(const QString& role, const QList<AccuracyGroup>& datasets, int methods) {
    AccuracyGroup avg{.label = role + QStringLiteral(" avg"), .held_out = role == kHeldOut, .average = true};
    for (int m = 0; m < methods; ++m) {
        QList<double> values;
        for (const AccuracyGroup& g : datasets)
            if (g.held_out == (role == kHeldOut)) values << g.values.at(m);
        avg.values << mean(values);
    }
    return avg;
}

// One colour per routing method, the same in every run (Tableau 10: distinct, readable on white, and
// still apart for the common colour-vision deficiencies), by the method's row in the engine's table; other
// labels take the remaining colours in turn.
QColor methodColor(const QString& method_key, int index) {
    // In the order of routingMethods(): base, single, merge, retrieval, average-activation, arrow, phatgoose.
    static const QColor by_row[] = {QColor(0xba, 0xb0, 0xac), QColor(0x9c, 0x75, 0x5f),
                                    QColor(0x76, 0xb7, 0xb2), QColor(0xed, 0xc9, 0x48),
                                    QColor(0xb0, 0x7a, 0xa1), QColor(0x59, 0xa1, 0x4f),
                                    QColor(0x4e, 0x79, 0xa7)};
    static const QColor others[] = {QColor(0xf2, 0x8e, 0x2b), QColor(0xe1, 0x57, 0x59),
                                    QColor(0xff, 0x9d, 0xa7)};
    const QString method = method_key.section(QLatin1Char(' '), 0, 0).section(QLatin1Char(':'), 0, 0);
    const auto& table = routingMethods();
    for (size_t row = 0; row < table.size() && row < std::size(by_row); ++row)
        if (table[row].name == method.toStdString()) return by_row[row];
    return others[index % 3];
}

}  // namespace

AccuracyChartData accuracyChartData(const QList<ResultRow>& rows, const QString& title) {
    AccuracyChartData data{.title = title};
    QStringList datasets;
    QHash<QString, QString> roles;
    std::map<std::pair<QString, QString>, double> values;  // (method key, dataset) -> latest value
    for (const ResultRow& r : rows) {
        const QString key = methodKey(r.method, r.top_k);
        if (!data.methods.contains(key)) data.methods << key;
        if (!datasets.contains(r.dataset)) datasets << r.dataset;
        roles[r.dataset] = r.role;
        values[{key, r.dataset}] = r.value;
    }
    bool any_held_in = false, any_held_out = false;
    for (const QString& d : orderedDatasets(datasets, roles)) {
        AccuracyGroup g{.label = d, .held_out = roles.value(d) == kHeldOut};
        any_held_in |= roles.value(d) == kHeldIn;
        any_held_out |= g.held_out;
        for (const QString& m : data.methods) {
            auto it = values.find({m, d});
            g.values << (it == values.end() ? kNoValue : it->second);
        }
        data.groups << g;
    }
    const QList<AccuracyGroup> per_dataset = data.groups;
    if (any_held_in) data.groups << averageGroup(kHeldIn, per_dataset, int(data.methods.size()));
    if (any_held_out) data.groups << averageGroup(kHeldOut, per_dataset, int(data.methods.size()));
    return data;
}

AccuracyChart::AccuracyChart(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    setMinimumHeight(220);

    plot_->plotLayout()->insertRow(0);
    QFont title_font = font();
    title_font.setBold(true);
    title_ = new QCPTextElement(plot_, QString(), title_font);
    plot_->plotLayout()->addElement(0, 0, title_);
    // The legend below the axis rect, in rows, so it never covers a bar.
    plot_->legend->setVisible(true);
    plot_->axisRect()->insetLayout()->take(plot_->legend);
    plot_->plotLayout()->addElement(2, 0, plot_->legend);
    plot_->plotLayout()->setRowStretchFactor(2, 0.001);
    plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot_->legend->setBorderPen(Qt::NoPen);
    plot_->legend->setMargins(QMargins(4, 0, 4, 2));
    plot_->addLayer(QStringLiteral("bands"), plot_->layer(QStringLiteral("grid")), QCustomPlot::limBelow);

    group_ = new QCPBarsGroup(plot_);
    group_->setSpacingType(QCPBarsGroup::stAbsolute);
    group_->setSpacing(1);
    plot_->xAxis->setLabel(tr("dataset"));
    plot_->xAxis->grid()->setVisible(false);
    plot_->xAxis->setSubTicks(false);
    plot_->xAxis->setTickLength(0, 4);
    plot_->yAxis->setLabel(tr("accuracy / exact match (%)"));
    plot_->yAxis->setRange(0, kTop);
    QSharedPointer<QCPAxisTickerFixed> y_ticks(new QCPAxisTickerFixed);
    y_ticks->setTickStep(20);
    y_ticks->setScaleStrategy(QCPAxisTickerFixed::ssNone);
    plot_->yAxis->setTicker(y_ticks);
    plot_->yAxis->grid()->setSubGridVisible(false);
    // Exact values on hover: bars carry no value labels, which would crowd a chart of seven methods.
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* event) { showValueAt(event); });
    showData({});
}

void AccuracyChart::showValueAt(QMouseEvent* event) {
    int index = -1;
    const QPointF pos = event->position();
    auto* bars = qobject_cast<QCPBars*>(plot_->plottableAt(pos, false, &index));
    if (!bars || index < 0 || index >= bars->data()->size()) {
        QToolTip::hideText();
        return;
    }
    const QCPBarsData& bar = *(bars->data()->at(index));
    const int group = int(std::lround(bar.key));
    if (group < 0 || group >= data_.groups.size()) return;
    QToolTip::showText(
        event->globalPosition().toPoint(),
        tr("%1 on %2: %3 %").arg(bars->name(), data_.groups.at(group).label).arg(bar.value, 0, 'f', 1),
        plot_);
}

void AccuracyChart::clearPlot() {
    plot_->clearPlottables();  // also takes the bars out of group_
    plot_->clearItems();
    setPlotHint(plot_, QString());  // the items are gone; the axes come back until data says otherwise
    bars_.clear();
}

void AccuracyChart::showData(const AccuracyChartData& data) {
    data_ = data;
    clearPlot();
    title_->setText(data_.title.isEmpty() ? tr("Accuracy per dataset") : data_.title);
    if (data_.groups.isEmpty() || data_.methods.isEmpty()) {
        showEmptyMessage();
        plot_->replot();
        return;
    }
    const double width = 0.8 / double(data_.methods.size());
    for (int m = 0; m < data_.methods.size(); ++m) {
        auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
        const QColor color = methodColor(data_.methods.at(m), m);
        bars->setName(data_.methods.at(m));
        bars->setBrush(color);
        bars->setPen(QPen(color.darker(140), 1));
        bars->setWidth(width);
        bars->setBarsGroup(group_);
        for (int g = 0; g < data_.groups.size(); ++g) {
            const double v = data_.groups.at(g).values.at(m);
            if (!std::isnan(v)) bars->addData(g, v);
        }
        bars_ << bars;
    }
    drawHeldOutBands();
    drawAverageSeparator();
    markZeroValues(width);
    fitToWidth(plot_->width());
    plot_->xAxis->setRange(-0.6, double(data_.groups.size()) - 0.4);
    plot_->replot();
}

// A shaded band behind every stretch of held-out groups, captioned, so they read as one block.
void AccuracyChart::drawHeldOutBands() {
    const int n = int(data_.groups.size());
    for (int begin = 0; begin < n;) {
        if (!data_.groups.at(begin).held_out) {
            ++begin;
            continue;
        }
        int end = begin;
        while (end < n && data_.groups.at(end).held_out) ++end;
        auto* band = new QCPItemRect(plot_);
        band->setLayer(QStringLiteral("bands"));
        band->topLeft->setCoords(begin - 0.5, kTop);
        band->bottomRight->setCoords(end - 0.5, 0);
        band->setPen(Qt::NoPen);
        band->setBrush(QColor(0xfc, 0xee, 0xd4));
        auto* caption = new QCPItemText(plot_);
        caption->setLayer(QStringLiteral("bands"));
        caption->position->setCoords((begin + end - 1) / 2.0, (100.0 + kTop) / 2.0);
        caption->setText(tr("held-out (zero-shot)"));
        caption->setColor(QColor(0x8a, 0x5a, 0x00));
        begin = end;
    }
}

// A bar of 0 % has no height; a small "0" at its foot tells it apart from a method that has no value there.
void AccuracyChart::markZeroValues(double bar_width) {
    const int n = int(data_.methods.size());
    QFont small = plot_->xAxis->tickLabelFont();
    small.setPointSizeF(small.pointSizeF() * 0.8);
    for (int g = 0; g < data_.groups.size(); ++g)
        for (int m = 0; m < n; ++m) {
            if (data_.groups.at(g).values.at(m) != 0.0) continue;
            auto* zero = new QCPItemText(plot_);
            zero->position->setCoords(g + (m - (n - 1) / 2.0) * bar_width, 0);
            zero->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
            zero->setText(QStringLiteral("0"));
            zero->setFont(small);
            zero->setColor(methodColor(data_.methods.at(m), m).darker(160));
            zero->setClipToAxisRect(true);
        }
}

void AccuracyChart::drawAverageSeparator() {
    for (int g = 0; g < data_.groups.size(); ++g) {
        if (!data_.groups.at(g).average) continue;
        if (g == 0) return;
        auto* line = new QCPItemStraightLine(plot_);
        line->point1->setCoords(g - 0.5, 0);
        line->point2->setCoords(g - 0.5, 1);
        line->setPen(QPen(QColor(0x80, 0x80, 0x80), 1, Qt::DashLine));
        return;
    }
}

void AccuracyChart::resizeEvent(QResizeEvent* event) {
    QWidget::resizeEvent(event);
    if (data_.groups.isEmpty()) return;
    fitToWidth(event->size().width());
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

// Tick labels upright where they fit, and as many legend entries a row as the width holds.
void AccuracyChart::fitToWidth(int plot_width) {
    setTicks(plot_width);
    int widest = 0;
    const QFontMetrics metrics(plot_->legend->font());
    for (const QString& m : data_.methods) widest = std::max(widest, metrics.horizontalAdvance(m));
    const int entry = widest + plot_->legend->iconSize().width() + plot_->legend->iconTextPadding() + 24;
    plot_->legend->setWrap(std::max(1, (plot_width - 20) / std::max(1, entry)));
    plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);  // re-flow the existing entries
}

void AccuracyChart::setTicks(int plot_width) {
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    const QStringList labels = tickLabels();
    int longest = 0;
    for (int g = 0; g < labels.size(); ++g) {
        ticks->addTick(g, labels.at(g));
        for (const QString& line : labels.at(g).split(QLatin1Char('\n')))
            longest = std::max(longest, int(line.size()));
    }
    plot_->xAxis->setTicker(ticks);
    // Slanted labels only when upright ones would run into each other.
    // The axis rect is the plot less its margins (about 80 px for the y axis and its label).
    const double per_group = std::max(0, plot_width - 80) / std::max(1.0, double(labels.size()));
    const double needed = longest * QFontMetrics(plot_->xAxis->tickLabelFont()).averageCharWidth() + 8;
    plot_->xAxis->setTickLabelRotation(needed > per_group ? 30 : 0);
}

QStringList AccuracyChart::tickLabels() const {
    QStringList labels;
    for (const AccuracyGroup& g : data_.groups) {
        if (g.average)
            labels << QString(g.label).replace(QLatin1Char(' '), QLatin1Char('\n'));
        else
            labels << (g.held_out ? g.label + tr("\n(held-out)") : g.label);
    }
    return labels;
}

void AccuracyChart::showEmptyMessage() {
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText));
    plot_->xAxis->setRange(0, 1);
    setPlotHint(plot_, tr("No evaluation results to show: Results > New evaluation... runs one."));
}

QCPBars* AccuracyChart::bars(const QString& method_key) const {
    for (QCPBars* b : bars_)
        if (b->name() == method_key) return b;
    return nullptr;
}

void AccuracyChart::save(const QString& file) const {
    // An unshown chart (tests, scripts) has no size of its own yet.
    const int w = plot_->width() >= 400 ? plot_->width() : 960;
    const int h = plot_->height() >= 250 ? plot_->height() : 540;
    const bool pdf = QFileInfo(file).suffix().compare(QLatin1String("pdf"), Qt::CaseInsensitive) == 0;
    const bool ok = pdf ? plot_->savePdf(file, w, h) : plot_->savePng(file, w, h);
    if (!ok) throw Error(file.toStdString() + ": cannot write the chart there");
}

}  // namespace phatgoose::ui
