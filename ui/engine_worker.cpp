#include "ui/engine_worker.h"

#include "model/model_summary.h"

namespace phatgoose::ui {

void EngineWorker::openModel(const QString& folder) {
    Q_EMIT busy(tr("Loading %1 ...").arg(folder));
    try {
        const ModelSummary s = summarizeModelFolder(folder.toStdString());
        const T5Config& c = s.config;
        ModelSummaryView v;
        v.folder = QString::fromStdString(s.folder);
        v.family = QString::fromStdString(c.family());
        v.shape = tr("d_model %1, d_kv %2, %3 heads, d_ff %4, %5 encoder + %6 decoder layers")
                      .arg(c.d_model).arg(c.d_kv).arg(c.num_heads).arg(c.d_ff).arg(c.num_layers).arg(c.num_decoder_layers);
        v.vocabulary = tr("%1 rows (tokenizer: %2 pieces and sentinels)").arg(c.vocab_size).arg(s.tokenizer_size);
        v.parameters = tr("%L1 (%2 MB as float32)").arg(s.parameters).arg(s.weights_mb, 0, 'f', 1);
        v.dtype = QString::fromStdString(s.weight_dtype);
        v.lora_sites = tr("%1 linear layers").arg(s.lora_sites);
        Q_EMIT modelOpened(v);
    } catch (const std::exception& e) {
        Q_EMIT failed(QString::fromStdString(e.what()).section('\n', 0, 0));
    }
}

}  // namespace phatgoose::ui
