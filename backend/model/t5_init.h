#pragma once
// Fresh weights for a T5 that will be pre-trained here (the demo's base model): normal initialisations
// scaled as Hugging Face's T5 does, so that every layer starts with unit-scale activations.
#include <cstdint>

#include "model/t5_model.h"

namespace phatgoose {

void initT5Weights(T5ModelImpl& model, uint64_t seed);

}  // namespace phatgoose
