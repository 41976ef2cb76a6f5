#pragma once
// T5's pre-training objective, at word level: drop about 15 % of a text's words in short spans, each
// replaced by a sentinel, and ask for the dropped spans back behind their sentinels.
//   "the soup was wonderful and warm"  ->  input  "the <extra_id_0> wonderful and <extra_id_1>"
//                                          target "<extra_id_0> soup was <extra_id_1> warm"
#include <cstdint>
#include <random>
#include <string>

#include "data/dataset.h"

namespace phatgoose {

struct SpanCorruptionOptions {
    double noise_density = 0.15;  // fraction of words dropped
    double mean_span_words = 3.0;
    int max_sentinels = 20;  // the tokenizer's extra_ids
};

// At least one word is dropped from any text of two or more words; a one-word text is returned whole as
// the target behind one sentinel.
Example corruptSpans(const std::string& text, std::mt19937_64& rng,
                     const SpanCorruptionOptions& options = {});

}  // namespace phatgoose
