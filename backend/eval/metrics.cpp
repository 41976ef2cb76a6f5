#include "eval/metrics.h"

#include <cctype>

namespace phatgoose {

std::string trimWhitespace(const std::string& text) {
    auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    size_t begin = 0, end = text.size();
    while (begin < end && blank(text[begin])) ++begin;
    while (end > begin && blank(text[end - 1])) --end;
    return text.substr(begin, end - begin);
}

bool exactMatch(const std::string& prediction, const std::string& target) {
    return trimWhitespace(prediction) == trimWhitespace(target);
}

void scorePredictions(DatasetScore& score) {
    int64_t labelled = 0, correct = 0;
    for (const ExamplePrediction& p : score.predictions) {
        if (!p.labelled) continue;
        ++labelled;
        correct += p.correct ? 1 : 0;
    }
    score.examples = labelled;
    score.value = labelled ? 100.0 * double(correct) / double(labelled) : 0.0;
}

double averageValue(const std::vector<DatasetScore>& scores) {
    if (scores.empty()) return 0.0;
    double sum = 0.0;
    for (const DatasetScore& s : scores) sum += s.value;
    return sum / double(scores.size());
}

}  // namespace phatgoose
