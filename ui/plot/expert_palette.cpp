#include "ui/plot/expert_palette.h"

namespace phatgoose::ui {

QColor expertColor(int expert) {
    // Tableau's 10 categorical colours, then evenly spaced hues for larger libraries.
    static const QColor kBase[] = {QColor(31, 119, 180),  QColor(255, 127, 14),  QColor(44, 160, 44),
                                   QColor(214, 39, 40),   QColor(148, 103, 189), QColor(140, 86, 75),
                                   QColor(227, 119, 194), QColor(127, 127, 127), QColor(188, 189, 34),
                                   QColor(23, 190, 207)};
    constexpr int kCount = int(sizeof(kBase) / sizeof(kBase[0]));
    if (expert < 0) return QColor(230, 230, 230);
    if (expert < kCount) return kBase[expert];
    return QColor::fromHsv((expert * 137) % 360, 160 + (expert % 3) * 30, 200);
}

QCPColorGradient expertGradient(int count) {
    count = std::max(count, 1);
    QMap<double, QColor> stops;
    // Two stops per band (its start and just before the next), so interpolation only blurs a hairline.
    constexpr double kEdge = 1e-4;
    for (int e = 0; e < count; ++e) {
        stops[double(e) / count] = expertColor(e);
        stops[std::max(double(e + 1) / count - kEdge, double(e) / count)] = expertColor(e);
    }
    QCPColorGradient g;
    g.setColorStops(stops);
    g.setLevelCount(std::max(350, count * 40));
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    return g;
}

QCPRange expertDataRange(int count) {
    return QCPRange(-0.5, std::max(count, 1) - 0.5);
}

}  // namespace phatgoose::ui
