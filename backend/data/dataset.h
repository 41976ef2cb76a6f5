#pragma once
// Task datasets as JSON Lines (docs/ARCHITECTURE.md, "Datasets and results"): one example a line,
// {"input": "...", "target": "...", "choices": ["...", ...], "task": "..."}. `choices` present -> rank
// classification; absent -> generation judged by exact match.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace phatgoose {

struct Example {
    std::string input, target;
    std::vector<std::string> choices;  // empty, or at least two with `target` among them
    std::string task;
    int64_t line = 0;  // 1-based line in the file, for error messages that point back at it
};

struct Dataset {
    std::filesystem::path path;
    std::string name;  // the file stem
    std::vector<Example> examples;
    int64_t skipped_lines = 0;  // bad lines passed over with skip_bad
};

// Reads a JSON Lines dataset. Blank lines are ignored; unknown keys are ignored. Any bad line throws
// phatgoose::Error "FILE:LINE: problem"; with skip_bad it is counted in skipped_lines instead. A file with
// no examples is an error either way.
Dataset loadJsonl(const std::filesystem::path& path, bool skip_bad = false);

// "FILE:LINE: problem": how every complaint about one example is phrased, here and in the trainers.
std::string exampleLocation(const Dataset& dataset, const Example& example);

}  // namespace phatgoose
