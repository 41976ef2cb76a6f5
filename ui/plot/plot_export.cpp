#include "ui/plot/plot_export.h"

#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>
#include <QPdfWriter>
#include <QSaveFile>

#include "ui/plot/qcustomplot_include.h"

namespace phatgoose::ui {
namespace {

bool writePng(QCustomPlot* plot, QSaveFile& out) {
    // Twice the screen size, so that the saved image stays sharp in papers and slides.
    return plot->toPixmap(plot->width(), plot->height(), 2.0).save(&out, "PNG");
}

bool writePdf(QCustomPlot* plot, QSaveFile& out) {
    const int w = plot->width(), h = plot->height();
    QPdfWriter writer(&out);
    writer.setCreator("PHATGOOSE Workbench");
    writer.setPageMargins(QMarginsF(0, 0, 0, 0));
    writer.setPageSize(QPageSize(QSizeF(w, h), QPageSize::Point));
    writer.setResolution(72);  // one point per plot pixel
    QCPPainter painter;
    if (!painter.begin(&writer)) return false;
    // Vector output, as QCustomPlot::savePdf draws it.
    painter.setMode(QCPPainter::pmVectorized);
    painter.setMode(QCPPainter::pmNoCaching);
    painter.setWindow(0, 0, w, h);
    plot->toPainter(&painter, w, h);
    return painter.end();
}

}  // namespace

bool savePlot(QCustomPlot* plot, const QString& file, QString* error) {
    const bool pdf = file.endsWith(".pdf", Qt::CaseInsensitive);
    if (!pdf && !file.endsWith(".png", Qt::CaseInsensitive)) {
        if (error) *error = QObject::tr("%1: choose a .png or .pdf file name").arg(file);
        return false;
    }
    QSaveFile out(file);
    if (!out.open(QIODevice::WriteOnly)) {
        if (error) *error = QObject::tr("%1: %2").arg(file, out.errorString());
        return false;
    }
    if (!(pdf ? writePdf(plot, out) : writePng(plot, out))) {
        out.cancelWriting();
        if (error) *error = QObject::tr("%1: the plot could not be drawn into the file").arg(file);
        return false;
    }
    if (!out.commit()) {
        if (error) *error = QObject::tr("%1: %2").arg(file, out.errorString());
        return false;
    }
    return true;
}

void savePlotInteractively(QCustomPlot* plot, const QString& name, const QString& suffix) {
    const QString filter = suffix == "pdf" ? QObject::tr("PDF (*.pdf)") : QObject::tr("PNG image (*.png)");
    QString file = QFileDialog::getSaveFileName(plot, QObject::tr("Save plot"), name + "." + suffix, filter);
    if (file.isEmpty()) return;
    if (!file.endsWith("." + suffix, Qt::CaseInsensitive)) file += "." + suffix;
    QString error;
    if (!savePlot(plot, file, &error))
        QMessageBox::warning(plot, QObject::tr("Save plot"),
                             QObject::tr("Could not save the plot.\n%1").arg(error));
}

void addPlotExportMenu(QCustomPlot* plot, const QString& name) {
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot, name](const QPoint& pos) {
        QMenu menu(plot);
        menu.addAction(QObject::tr("Save plot as PNG..."), plot,
                       [plot, name] { savePlotInteractively(plot, name, "png"); });
        menu.addAction(QObject::tr("Save plot as PDF..."), plot,
                       [plot, name] { savePlotInteractively(plot, name, "pdf"); });
        menu.exec(plot->mapToGlobal(pos));
    });
}

}  // namespace phatgoose::ui
