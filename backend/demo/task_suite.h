#pragma once
// The demo's synthetic task suite (docs/ARCHITECTURE.md, "The demo workspace"): word and number tasks phrased
// as short instructions. Held-in tasks get an expert each; every held-out task needs a skill that one held-in
// task teaches, asked in another phrasing or answer format, so that zero-shot routing has something to find.
// The suite is a fixed design: nothing in it was tuned on held-out results.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "store/workspace.h"

namespace phatgoose {

struct TaskDefinition {
    std::string name;
    TaskRole role = TaskRole::HeldIn;
    bool multiple_choice = false;
    std::string description;
    std::string skill;  // the held-in task whose skill a held-out task needs (its own name when held-in)
    std::function<Example(std::mt19937_64&)> draw;  // one random example (task field filled)
};

const std::vector<TaskDefinition>& demoTaskSuite();
// The suite's task of that name; throws phatgoose::Error for another name.
const TaskDefinition& findDemoTask(const std::string& name);

// `count` examples of `task` drawn with `seed`; duplicates of an input are redrawn while the task has
// unseen inputs left (small tasks such as antonyms have fewer distinct inputs than large splits).
std::vector<Example> drawExamples(const TaskDefinition& task, int64_t count, uint64_t seed,
                                  const std::vector<Example>& avoid = {});

// Writes examples as JSON Lines (atomically).
void writeJsonl(const std::filesystem::path& path, const std::vector<Example>& examples);

}  // namespace phatgoose
