#include "demo/span_corruption.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

namespace phatgoose {
namespace {

std::vector<std::string> wordsOf(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
}

std::string sentinel(int n) {
    return "<extra_id_" + std::to_string(n) + ">";
}

// Which words to drop: spans of geometric-ish length placed at random, never two sentinels adjacent.
std::vector<bool> droppedWords(size_t n, std::mt19937_64& rng, const SpanCorruptionOptions& o) {
    std::vector<bool> drop(n, false);
    const size_t budget = std::max<size_t>(1, size_t(std::lround(double(n) * o.noise_density)));
    std::geometric_distribution<int> extra(1.0 / o.mean_span_words);
    size_t dropped = 0;
    for (int attempt = 0; dropped < budget && attempt < 4 * int(n); ++attempt) {
        const size_t start = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
        const size_t len = std::min(budget - dropped, size_t(1 + extra(rng)));
        for (size_t i = start; i < std::min(n, start + len); ++i)
            if (!drop[i]) drop[i] = true, ++dropped;
    }
    if (std::all_of(drop.begin(), drop.end(), [](bool d) { return d; })) drop[0] = false;
    return drop;
}

}  // namespace

Example corruptSpans(const std::string& text, std::mt19937_64& rng, const SpanCorruptionOptions& o) {
    const std::vector<std::string> words = wordsOf(text);
    Example ex;
    if (words.size() < 2) {
        ex.input = sentinel(0);
        ex.target = sentinel(0) + " " + text;
        return ex;
    }
    const std::vector<bool> drop = droppedWords(words.size(), rng, o);
    std::string input, target;
    int spans = 0;
    for (size_t i = 0; i < words.size(); ++i) {
        const bool opens = drop[i] && (i == 0 || !drop[i - 1]);
        if (opens && spans < o.max_sentinels) {
            const std::string mark = sentinel(spans);
            for (std::string* side : {&input, &target}) {
                if (!side->empty()) side->push_back(' ');
                side->append(mark);
            }
            ++spans;
        }
        std::string& side = drop[i] && spans <= o.max_sentinels ? target : input;
        side += (side.empty() ? "" : " ") + words[i];
    }
    ex.input = input;
    ex.target = target;
    return ex;
}

}  // namespace phatgoose
