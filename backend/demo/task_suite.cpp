#include "demo/task_suite.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "atomic_file.h"
#include "error.h"

namespace phatgoose {
namespace {

using Rng = std::mt19937_64;

// ---- word lists (the suite's whole vocabulary comes from here and the templates) ----

const std::vector<std::pair<std::string, std::string>> kOpposites = {
    {"hot", "cold"},    {"big", "small"},  {"fast", "slow"},   {"happy", "sad"},  {"light", "dark"},
    {"open", "closed"}, {"early", "late"}, {"full", "empty"},  {"hard", "soft"},  {"high", "low"},
    {"old", "new"},     {"rich", "poor"},  {"strong", "weak"}, {"wet", "dry"},    {"loud", "quiet"},
    {"clean", "dirty"}, {"long", "short"}, {"near", "far"},    {"thick", "thin"}, {"young", "aged"},
};
const std::vector<std::string> kAnimals = {"cat",    "dog",   "horse", "tiger",
                                           "rabbit", "eagle", "fish",  "sheep"};
const std::vector<std::string> kPlants = {"tree", "rose", "grass", "fern", "tulip", "oak", "cactus", "moss"};
const std::vector<std::string> kTools = {"hammer", "saw",   "knife",  "spoon",
                                         "shovel", "brush", "needle", "drill"};
const std::vector<std::string> kNouns = {"lamp",  "river", "chair", "cloud", "window", "bread",  "stone",
                                         "table", "apple", "book",  "clock", "garden", "bottle", "road"};
const std::vector<std::string> kGood = {"wonderful", "great", "lovely", "excellent", "delicious", "friendly"};
const std::vector<std::string> kBad = {"terrible", "awful", "boring", "rude", "horrible", "disappointing"};
const std::vector<std::string> kThings = {"soup", "movie",   "hotel", "service",
                                          "book", "concert", "meal",  "trip"};

template <class T>
const T& pick(const std::vector<T>& items, Rng& rng) {
    return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
}
int number(Rng& rng, int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
}
bool coin(Rng& rng) {
    return number(rng, 0, 1) == 1;
}

std::pair<std::string, std::string> opposite(Rng& rng) {
    const auto& pair = pick(kOpposites, rng);
    return coin(rng) ? pair : std::make_pair(pair.second, pair.first);
}

std::pair<int, int> twoDifferent(Rng& rng) {
    const int a = number(rng, 0, 19);
    int b = number(rng, 0, 18);
    if (b >= a) ++b;
    return {a, b};
}

std::string sentenceOf(Rng& rng, int words) {
    std::string s;
    for (int i = 0; i < words; ++i) s += (i ? " " : "") + pick(kNouns, rng);
    return s;
}

std::string review(Rng& rng, bool good) {
    const std::string& thing = pick(kThings, rng);
    const std::string& word = pick(good ? kGood : kBad, rng);
    switch (number(rng, 0, 2)) {
        case 0:
            return "the " + thing + " was " + word + ".";
        case 1:
            return "what a " + word + " " + thing + ".";
        default:
            return "we found the " + thing + " " + word + " today.";
    }
}

std::string categoryOf(const std::string& word) {
    auto in = [&](const std::vector<std::string>& list) {
        return std::find(list.begin(), list.end(), word) != list.end();
    };
    return in(kAnimals) ? "animal" : in(kPlants) ? "plant" : "tool";
}

std::string categorised(Rng& rng) {
    const int which = number(rng, 0, 2);
    return pick(which == 0 ? kAnimals : which == 1 ? kPlants : kTools, rng);
}

Example generation(std::string input, std::string target) {
    return Example{.input = std::move(input), .target = std::move(target)};
}
Example choice(std::string input, std::string target, std::vector<std::string> choices) {
    return Example{.input = std::move(input), .target = std::move(target), .choices = std::move(choices)};
}

// ---- held-in tasks ----

Example antonym(Rng& rng) {
    const auto [word, answer] = opposite(rng);
    return generation("Write the opposite of this word: " + word, answer);
}
Example addition(Rng& rng) {
    const int a = number(rng, 0, 9), b = number(rng, 0, 9);
    return generation("Add these two numbers: " + std::to_string(a) + " and " + std::to_string(b),
                      std::to_string(a + b));
}
Example reverseWords(Rng& rng) {
    std::vector<std::string> words = {pick(kNouns, rng), pick(kNouns, rng), pick(kNouns, rng)};
    std::string in = words[0] + " " + words[1] + " " + words[2];
    return generation("Repeat these words in reverse order: " + in,
                      words[2] + " " + words[1] + " " + words[0]);
}
Example countWords(Rng& rng) {
    const int n = number(rng, 1, 6);
    return generation("How many words are in this list? " + sentenceOf(rng, n), std::to_string(n));
}
Example sentiment(Rng& rng) {
    const bool good = coin(rng);
    return choice("Is the following review positive or negative? " + review(rng, good),
                  good ? "positive" : "negative", {"positive", "negative"});
}
Example largerNumber(Rng& rng) {
    const auto [a, b] = twoDifferent(rng);
    const std::string sa = std::to_string(a), sb = std::to_string(b);
    return choice("Which number is larger, " + sa + " or " + sb + "?", std::to_string(std::max(a, b)),
                  {sa, sb});
}
Example category(Rng& rng) {
    const std::string word = categorised(rng);
    return choice("Is a " + word + " an animal, a plant, or a tool?", categoryOf(word),
                  {"animal", "plant", "tool"});
}

// ---- held-out tasks: a held-in skill, asked another way ----

Example oppositeChoice(Rng& rng) {
    const auto [word, answer] = opposite(rng);
    std::string other;
    do other = opposite(rng).first;
    while (other == answer || other == word);
    std::vector<std::string> choices = {answer, other};
    if (coin(rng)) std::swap(choices[0], choices[1]);
    return choice("Pick the word that means the opposite of " + word + ".", answer, choices);
}
Example sumQuestion(Rng& rng) {
    const int a = number(rng, 0, 9), b = number(rng, 0, 9);
    return generation("What is the sum of " + std::to_string(a) + " and " + std::to_string(b) + "?",
                      std::to_string(a + b));
}
Example reviewMood(Rng& rng) {
    const bool good = coin(rng);
    return choice("Review: " + review(rng, good) + " Was this review positive or negative?",
                  good ? "positive" : "negative", {"positive", "negative"});
}
Example biggerNumberSaid(Rng& rng) {
    const auto [a, b] = twoDifferent(rng);
    return generation("Say the bigger number: " + std::to_string(a) + " or " + std::to_string(b),
                      std::to_string(std::max(a, b)));
}
Example kindOfThing(Rng& rng) {
    const std::string word = categorised(rng);
    return generation("Name the kind of thing a " + word + " is.", categoryOf(word));
}

// Closer rephrasings: the held-in instruction reworded, the answer in the same form.
Example oppositeWord(Rng& rng) {
    const auto [word, answer] = opposite(rng);
    return generation("Give the opposite of: " + word, answer);
}
Example plusSum(Rng& rng) {
    const int a = number(rng, 0, 9), b = number(rng, 0, 9);
    return generation(std::to_string(a) + " plus " + std::to_string(b) + " equals", std::to_string(a + b));
}
Example countList(Rng& rng) {
    const int n = number(rng, 1, 6);
    return generation("Count the words: " + sentenceOf(rng, n), std::to_string(n));
}
Example reverseOrder(Rng& rng) {
    std::vector<std::string> words = {pick(kNouns, rng), pick(kNouns, rng), pick(kNouns, rng)};
    return generation("Reverse the order of these words: " + words[0] + " " + words[1] + " " + words[2],
                      words[2] + " " + words[1] + " " + words[0]);
}
Example reviewOpinion(Rng& rng) {
    const bool good = coin(rng);
    return choice(review(rng, good) + " Positive or negative?", good ? "positive" : "negative",
                  {"positive", "negative"});
}
Example largerOf(Rng& rng) {
    const auto [a, b] = twoDifferent(rng);
    const std::string sa = std::to_string(a), sb = std::to_string(b);
    return choice("Of " + sa + " and " + sb + ", which is larger?", std::to_string(std::max(a, b)), {sa, sb});
}
Example animalPlantOrTool(Rng& rng) {
    const std::string word = categorised(rng);
    return choice("A " + word + " is an animal, a plant, or a tool?", categoryOf(word),
                  {"animal", "plant", "tool"});
}

TaskDefinition heldIn(std::string name, bool mc, std::string description, Example (*draw)(Rng&)) {
    std::string skill = name;
    return {std::move(name), TaskRole::HeldIn, mc, std::move(description), std::move(skill), draw};
}
TaskDefinition heldOut(std::string name, bool mc, std::string description, std::string skill,
                       Example (*draw)(Rng&)) {
    return {std::move(name), TaskRole::HeldOut, mc, std::move(description), std::move(skill), draw};
}

std::vector<TaskDefinition> makeSuite() {
    std::vector<TaskDefinition> suite = {
        heldIn("antonym", false, "the opposite of a word", antonym),
        heldIn("addition", false, "the sum of two digits", addition),
        heldIn("reverse_words", false, "three words in reverse order", reverseWords),
        heldIn("count_words", false, "how many words a list has", countWords),
        heldIn("sentiment", true, "whether a short review is positive or negative", sentiment),
        heldIn("larger_number", true, "the larger of two numbers", largerNumber),
        heldIn("category", true, "whether a word names an animal, a plant or a tool", category),
        heldOut("opposite_choice", true, "the opposite of a word, chosen from two", "antonym",
                oppositeChoice),
        heldOut("sum_question", false, "a sum asked as a question", "addition", sumQuestion),
        heldOut("review_mood", true, "review sentiment with the question after the review", "sentiment",
                reviewMood),
        heldOut("bigger_number_said", false, "the larger of two numbers, written out", "larger_number",
                biggerNumberSaid),
        heldOut("kind_of_thing", false, "the category of a word, written out", "category", kindOfThing),
        heldOut("opposite_word", false, "the opposite of a word, asked in other words", "antonym",
                oppositeWord),
        heldOut("plus_sum", false, "a sum written as 'a plus b equals'", "addition", plusSum),
        heldOut("count_list", false, "how many words a list has, asked in other words", "count_words",
                countList),
        heldOut("reverse_order", false, "three words in reverse order, asked in other words", "reverse_words",
                reverseOrder),
        heldOut("review_opinion", true, "review sentiment, the bare review then the question", "sentiment",
                reviewOpinion),
        heldOut("larger_of", true, "the larger of two numbers, asked in other words", "larger_number",
                largerOf),
        heldOut("animal_plant_or_tool", true, "the category of a word, asked in other words", "category",
                animalPlantOrTool),
    };
    for (TaskDefinition& t : suite) {
        auto draw = t.draw;
        const std::string name = t.name;
        t.draw = [draw, name](Rng& rng) {
            Example e = draw(rng);
            e.task = name;
            return e;
        };
    }
    return suite;
}

}  // namespace

const std::vector<TaskDefinition>& demoTaskSuite() {
    static const std::vector<TaskDefinition> suite = makeSuite();
    return suite;
}

const TaskDefinition& findDemoTask(const std::string& name) {
    for (const TaskDefinition& t : demoTaskSuite())
        if (t.name == name) return t;
    throw Error("the demo suite has no task '" + name + "'");
}

std::vector<Example> drawExamples(const TaskDefinition& task, int64_t count, uint64_t seed,
                                  const std::vector<Example>& avoid) {
    Rng rng(seed);
    std::set<std::string> seen;
    for (const Example& e : avoid) seen.insert(e.input);
    std::vector<Example> out;
    constexpr int kTriesPerExample = 50;  // then accept a repeat: the task has no unseen inputs left
    while (int64_t(out.size()) < count) {
        Example e = task.draw(rng);
        for (int tries = 0; seen.count(e.input) && tries < kTriesPerExample; ++tries) e = task.draw(rng);
        seen.insert(e.input);
        e.line = int64_t(out.size()) + 1;
        out.push_back(std::move(e));
    }
    return out;
}

void writeJsonl(const std::filesystem::path& path, const std::vector<Example>& examples) {
    std::ostringstream text;
    for (const Example& e : examples) {
        nlohmann::json j = {{"input", e.input}, {"target", e.target}, {"task", e.task}};
        if (!e.choices.empty()) j["choices"] = e.choices;
        text << j.dump() << "\n";
    }
    std::filesystem::create_directories(path.parent_path());
    writeFileAtomically(path, text.str());
}

}  // namespace phatgoose
