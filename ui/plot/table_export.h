#pragma once
// A table model as CSV (RFC 4180: comma-separated, fields with commas, quotes or line breaks quoted),
// written through QSaveFile so a failed write never leaves half a file behind.
#include <QtCore/qnamespace.h>
#include <QString>

class QAbstractItemModel;

namespace phatgoose::ui {

// Writes the header and every row of `model` as it is shown (a filter proxy writes only the rows it keeps),
// taking each cell's value from `value_role` where it has one, else its display text. Throws
// phatgoose::Error naming the file when it cannot be written.
void saveTableAsCsv(const QAbstractItemModel& model, const QString& file, int value_role = Qt::UserRole);

// One CSV field, quoted where needed.
QString csvField(const QString& text);

}  // namespace phatgoose::ui
