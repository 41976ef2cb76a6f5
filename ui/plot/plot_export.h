#pragma once
// Saving a plot as PNG (raster) or PDF (vector): a context menu on any QCustomPlot, and the plain function
// behind it. Files are written through QSaveFile, so a failed save never leaves half a file.
#include <QString>

class QCustomPlot;
class QWidget;

namespace phatgoose::ui {

// The format follows the suffix (.png or .pdf). On failure returns false and says why in *error.
bool savePlot(QCustomPlot* plot, const QString& file, QString* error);

// Adds "Save plot as PNG..." and "Save plot as PDF..." to the plot's context menu; `name` suggests the file
// name.
void addPlotExportMenu(QCustomPlot* plot, const QString& name);

// Asks for a file (QFileDialog) and saves, with a message box on failure.
void savePlotInteractively(QCustomPlot* plot, const QString& name, const QString& suffix);

}  // namespace phatgoose::ui
