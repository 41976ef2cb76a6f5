#include "model/t5_init.h"

#include <cmath>

namespace phatgoose {

void initT5Weights(T5ModelImpl& model, uint64_t seed) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(seed);
    const T5Config& c = model.config();
    const double d_model = double(c.d_model);
    for (auto& item : model.named_parameters()) {
        const std::string& name = item.key();
        torch::Tensor& w = item.value();
        auto ends = [&](const std::string& suffix) {
            return name.size() >= suffix.size() &&
                   name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        double std = 1.0 / std::sqrt(d_model);  // k, v, wi, relative_attention_bias
        if (ends("layer_norm.weight")) {
            w.fill_(1.0);
            continue;
        }
        if (name == "shared.weight") std = 1.0;
        // The untied head: Hugging Face draws it with std 1, which makes the first logits d_model times too
        // large for a model trained from scratch with a small batch; 1/sqrt(d_model) keeps them near unit.
        if (name == "lm_head.weight") std = 1.0 / std::sqrt(d_model);
        if (ends(".q.weight")) std = 1.0 / std::sqrt(d_model * double(c.d_kv));
        if (ends(".o.weight")) std = 1.0 / std::sqrt(double(c.innerDim()));
        if (ends(".wo.weight")) std = 1.0 / std::sqrt(double(c.d_ff));
        w.normal_(0.0, std);
    }
}

}  // namespace phatgoose
