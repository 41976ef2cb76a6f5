#pragma once
// The paper's metrics: rank-classification accuracy over answer choices and exact match for generation,
// per dataset and averaged over datasets. Values are percentages.
#include <cstdint>
#include <string>
#include <vector>

namespace phatgoose {

struct ExamplePrediction {
    int64_t index = 0;  // position in the dataset
    std::string prediction;
    bool correct = false;
    bool labelled = true;  // false: a multiple-choice example without a target, predicted but not scored
    double score = 0.0;  // rank: the chosen answer's mean log-likelihood; generation: summed log-probability
};

struct DatasetScore {
    std::string dataset;
    std::string metric;    // "accuracy", "exact_match", or "accuracy+exact_match" for a mixed dataset
    double value = 0.0;    // percent of labelled examples predicted correctly
    int64_t examples = 0;  // labelled examples counted
    std::vector<ExamplePrediction> predictions;
};

// Whitespace at either end does not count: T5 decodes with stray spaces around sentencepiece pieces.
std::string trimWhitespace(const std::string& text);
bool exactMatch(const std::string& prediction, const std::string& target);

// Fills value and examples from the predictions.
void scorePredictions(DatasetScore& score);

// Unweighted mean of the datasets' values, as the paper averages (each dataset counts once); 0 for none.
double averageValue(const std::vector<DatasetScore>& scores);

}  // namespace phatgoose
