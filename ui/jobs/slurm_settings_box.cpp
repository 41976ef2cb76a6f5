#include "ui/jobs/slurm_settings_box.h"

#include <QFormLayout>
#include <QLineEdit>
#include <QSettings>
#include <QSpinBox>

namespace phatgoose::ui {

SlurmSettingsBox::SlurmSettingsBox(QWidget* parent) : QGroupBox(tr("Slurm"), parent) {
    auto* form = new QFormLayout(this);
    partition_ = new QLineEdit(this);
    time_ = new QLineEdit(this);
    time_->setPlaceholderText(tr("e.g. 02:00:00"));
    cpus_ = new QSpinBox(this);
    cpus_->setRange(0, 1024);
    cpus_->setSpecialValueText(tr("default"));
    mem_ = new QLineEdit(this);
    mem_->setPlaceholderText(tr("e.g. 16G"));
    account_ = new QLineEdit(this);
    extra_ = new QLineEdit(this);
    extra_->setPlaceholderText(tr("more sbatch options, e.g. --qos=short"));
    form->addRow(tr("Partition"), partition_);
    form->addRow(tr("Time limit"), time_);
    form->addRow(tr("CPUs per task"), cpus_);
    form->addRow(tr("Memory"), mem_);
    form->addRow(tr("Account"), account_);
    form->addRow(tr("Extra"), extra_);
    const QSettings s;
    setSettings({s.value("slurm/partition").toString(), s.value("slurm/time").toString(),
                 s.value("slurm/mem").toString(), s.value("slurm/account").toString(),
                 s.value("slurm/extra").toString(), s.value("slurm/cpus", 0).toInt()});
}

SlurmSettings SlurmSettingsBox::settings() const {
    return {partition_->text().trimmed(), time_->text().trimmed(),  mem_->text().trimmed(),
            account_->text().trimmed(),   extra_->text().trimmed(), cpus_->value()};
}

void SlurmSettingsBox::setSettings(const SlurmSettings& s) {
    partition_->setText(s.partition);
    time_->setText(s.time);
    mem_->setText(s.mem);
    account_->setText(s.account);
    extra_->setText(s.extra);
    cpus_->setValue(s.cpus);
}

void SlurmSettingsBox::remember() const {
    const SlurmSettings s = settings();
    QSettings settings;
    settings.setValue("slurm/partition", s.partition);
    settings.setValue("slurm/time", s.time);
    settings.setValue("slurm/mem", s.mem);
    settings.setValue("slurm/account", s.account);
    settings.setValue("slurm/extra", s.extra);
    settings.setValue("slurm/cpus", s.cpus);
}

}  // namespace phatgoose::ui
