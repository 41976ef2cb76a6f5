#pragma once
// The forward pass's work between matrix products, each in one pass over memory: RMS norm, the feed-forward
// activation (times the gate's other half in v1.1), and the attention's bias-plus-softmax. LibTorch spends
// several passes and allocations on each (x.pow(2).mean(), rsqrt, two multiplies; scores + bias, softmax),
// and its erf GELU is scalar: on a 128-token flan-t5-small encode these were a third of the time outside
// the products. Inference only: the modules call these when no gradient is needed (model/t5_modules.cpp)
// and LibTorch's ops otherwise, so training keeps autograd. float32, contiguous; AVX2/FMA with a portable
// fallback; rows are split over the engine's two threads when there are enough of them.
#include <torch/torch.h>

#include "model/t5_config.h"
#include "model/weight_kernels.h"

namespace phatgoose {

// weight * x / sqrt(mean(x^2) + eps) over the last dimension. x: [..., d]; weight: [d]. Returns a new tensor.
torch::Tensor rmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                      KernelIsa isa = bestKernelIsa());

// a = act(a) (v1.0) or a = act(a) * b (v1.1, b the same shape as a), in place.
void activateInPlace(torch::Tensor& a, FeedForwardActivation activation, const torch::Tensor& b = {},
                     KernelIsa isa = bestKernelIsa());

// scores = softmax(scores + bias) over the last dimension, in place. scores: [batch, heads, q_len, k_len];
// bias: broadcastable to it along batch only ([1 or batch, heads, q_len, k_len]), or undefined.
void biasSoftmaxInPlace(torch::Tensor& scores, const torch::Tensor& bias, KernelIsa isa = bestKernelIsa());

}  // namespace phatgoose
