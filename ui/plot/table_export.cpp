#include "ui/plot/table_export.h"

#include <QAbstractItemModel>
#include <QSaveFile>
#include <QStringList>

#include "error.h"

namespace phatgoose::ui {

QString csvField(const QString& text) {
    if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"')) &&
        !text.contains(QLatin1Char('\n')) && !text.contains(QLatin1Char('\r')))
        return text;
    QString quoted = text;
    quoted.replace(QLatin1String("\""), QLatin1String("\"\""));
    return QLatin1Char('"') + quoted + QLatin1Char('"');
}

namespace {

QString cellText(const QAbstractItemModel& model, int row, int column, int value_role) {
    const QModelIndex index = model.index(row, column);
    QVariant value = model.data(index, value_role);
    if (!value.isValid()) value = model.data(index, Qt::DisplayRole);
    // Full precision: the file is for analysis, not for reading off the screen.
    if (value.typeId() == QMetaType::Double) return QString::number(value.toDouble(), 'g', 17);
    if (value.typeId() == QMetaType::Bool)
        return value.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    return value.toString();
}

QByteArray csvOf(const QAbstractItemModel& model, int value_role) {
    QStringList lines;
    QStringList header;
    for (int c = 0; c < model.columnCount(); ++c)
        header << csvField(model.headerData(c, Qt::Horizontal, Qt::DisplayRole).toString());
    lines << header.join(QLatin1Char(','));
    for (int r = 0; r < model.rowCount(); ++r) {
        QStringList fields;
        for (int c = 0; c < model.columnCount(); ++c) fields << csvField(cellText(model, r, c, value_role));
        lines << fields.join(QLatin1Char(','));
    }
    return (lines.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8();
}

}  // namespace

void saveTableAsCsv(const QAbstractItemModel& model, const QString& file, int value_role) {
    QSaveFile out(file);
    if (!out.open(QIODevice::WriteOnly))
        throw Error(file.toStdString() + ": cannot write the CSV file: " + out.errorString().toStdString());
    const QByteArray bytes = csvOf(model, value_role);
    if (out.write(bytes) != bytes.size() || !out.commit())
        throw Error(file.toStdString() + ": cannot write the CSV file: " + out.errorString().toStdString());
}

}  // namespace phatgoose::ui
