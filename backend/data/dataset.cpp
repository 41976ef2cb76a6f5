#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "error.h"

namespace phatgoose {
namespace {

using nlohmann::json;

// A problem with one line; loadJsonl adds the file and line number.
struct LineProblem {
    std::string what;
};

std::string requiredString(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end()) throw LineProblem{std::string("missing \"") + key + "\""};
    if (!it->is_string())
        throw LineProblem{std::string("\"") + key + "\" must be a string, got " + it->type_name()};
    return it->get<std::string>();
}

std::vector<std::string> choicesOf(const json& object) {
    auto it = object.find("choices");
    if (it == object.end() || it->is_null()) return {};
    if (!it->is_array())
        throw LineProblem{std::string("\"choices\" must be an array, got ") + it->type_name()};
    if (it->size() < 2)
        throw LineProblem{"\"choices\" must hold at least two answers, got " + std::to_string(it->size())};
    std::vector<std::string> choices;
    for (const json& c : *it) {
        if (!c.is_string())
            throw LineProblem{std::string("\"choices\" must hold strings, got ") + c.type_name()};
        // Two equal answers would both be "right": rank classification could not be wrong.
        if (std::find(choices.begin(), choices.end(), c.get<std::string>()) != choices.end())
            throw LineProblem{"\"choices\" holds \"" + c.get<std::string>() + "\" twice"};
        choices.push_back(c.get<std::string>());
    }
    return choices;
}

// JSON allows a key twice in one object and keeps the last; a dataset line with "target" twice is a mistake
// whose silent resolution would change the answer. The parser's callback sees every key of every object.
class DuplicateKeyFinder {
public:
    bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) keys_.emplace_back();
        if (event == json::parse_event_t::object_end && !keys_.empty()) keys_.pop_back();
        if (event == json::parse_event_t::key && !keys_.empty() && duplicate_.empty()) {
            const std::string key = parsed.get<std::string>();
            if (std::find(keys_.back().begin(), keys_.back().end(), key) != keys_.back().end())
                duplicate_ = key;
            keys_.back().push_back(key);
        }
        return true;
    }
    const std::string& duplicate() const { return duplicate_; }

private:
    std::vector<std::vector<std::string>> keys_;
    std::string duplicate_;
};

Example parseExample(const std::string& text, const std::string& default_task) {
    json object;
    DuplicateKeyFinder duplicates;
    try {
        object = json::parse(text, std::ref(duplicates));
    } catch (const json::parse_error& e) {
        // Drop nlohmann's "[json.exception.parse_error.101] " prefix: it means nothing to a user.
        const std::string what = e.what();
        const size_t tag_end = what.find("] ");
        throw LineProblem{"malformed JSON: " +
                          (tag_end == std::string::npos ? what : what.substr(tag_end + 2))};
    }
    if (!object.is_object())
        throw LineProblem{std::string("expected a JSON object, got ") + object.type_name()};
    if (!duplicates.duplicate().empty())
        throw LineProblem{"the key \"" + duplicates.duplicate() + "\" appears twice"};
    Example ex;
    ex.input = requiredString(object, "input");
    ex.choices = choicesOf(object);
    // Unlabelled multiple-choice examples may omit the target; a given one must be among the choices,
    // because rank classification scores the choices against it.
    const bool has_target = ex.choices.empty() || object.contains("target");
    if (has_target) ex.target = requiredString(object, "target");
    if (has_target && !ex.choices.empty() &&
        std::find(ex.choices.begin(), ex.choices.end(), ex.target) == ex.choices.end())
        throw LineProblem{"\"target\" \"" + ex.target + "\" is not one of the choices"};
    ex.task = object.contains("task") ? requiredString(object, "task") : default_task;
    return ex;
}

bool isBlank(const std::string& line) {
    return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

}  // namespace

std::string exampleLocation(const Dataset& dataset, const Example& example) {
    return dataset.path.string() + ":" + std::to_string(example.line);
}

Dataset loadJsonl(const std::filesystem::path& path, bool skip_bad) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot open the dataset file");
    Dataset dataset;
    dataset.path = path;
    dataset.name = path.stem().string();
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (isBlank(line)) continue;
        try {
            Example ex = parseExample(line, dataset.name);
            ex.line = number;
            dataset.examples.push_back(std::move(ex));
        } catch (const LineProblem& p) {
            if (!skip_bad) throw Error(path.string() + ":" + std::to_string(number) + ": " + p.what);
            ++dataset.skipped_lines;
        }
    }
    if (in.bad()) throw Error(path.string() + ": read error");
    if (dataset.examples.empty())
        throw Error(path.string() + ": the dataset holds no examples" +
                    (dataset.skipped_lines
                         ? " (" + std::to_string(dataset.skipped_lines) + " bad lines skipped)"
                         : ""));
    return dataset;
}

}  // namespace phatgoose
