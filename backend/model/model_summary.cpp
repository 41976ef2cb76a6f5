#include "model/model_summary.h"

#include "model/t5_loader.h"

namespace phatgoose {

ModelSummary summarizeModelFolder(const std::filesystem::path& dir) {
    return summarizeModel(loadPretrainedT5(dir));
}

ModelSummary summarizeModel(const PretrainedT5& t5) {
    ModelSummary s;
    s.folder = t5.dir.string();
    s.config = t5.config;
    s.tokenizer_size = t5.tokenizer->size();
    s.parameters = t5.parameter_count;
    s.weights_mb = double(t5.weight_bytes) / 1e6;
    s.weight_dtype = t5.weight_dtype;
    s.lora_sites = int64_t(t5LinearSites(t5.config).size());
    return s;
}

}  // namespace phatgoose
