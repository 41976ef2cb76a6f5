#pragma once
// The Slurm fields of the dialogs that can run on a cluster (Train gates, New evaluation): partition, time
// limit, CPUs per task, memory, account and extra sbatch options, remembered between runs in the settings.
#include <QGroupBox>

#include "ui/engine_messages.h"

class QLineEdit;
class QSpinBox;

namespace phatgoose::ui {

class SlurmSettingsBox : public QGroupBox {
    Q_OBJECT
public:
    explicit SlurmSettingsBox(QWidget* parent = nullptr);  // starts with the remembered values
    SlurmSettings settings() const;
    void setSettings(const SlurmSettings& s);
    void remember() const;  // what the next dialog starts with

private:
    QLineEdit *partition_, *time_, *mem_, *account_, *extra_;
    QSpinBox* cpus_;
};

}  // namespace phatgoose::ui
