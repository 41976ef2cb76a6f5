#pragma once
// A padded batch of token-id rows with its attention mask: how the model, the trainers and the evaluator
// hand several inputs of different lengths to one forward pass.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace phatgoose {

// Rows of token ids padded on the right into one [batch, max_len] tensor, with its 1/0 mask.
struct TokenBatch {
    torch::Tensor ids;   // [batch, max_len] int64
    torch::Tensor mask;  // [batch, max_len] int64, 1 = token
    static TokenBatch fromRows(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id);
};

}  // namespace phatgoose
