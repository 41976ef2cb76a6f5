#pragma once
// The demo's rule for held-out tasks, fixed before any router is run on them: a candidate is kept only when
// the base model cannot already do it and the expert of the skill it needs, alone, can. A zero-shot routing
// experiment says something only when the library holds what the task needs.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace phatgoose {

struct HeldOutRule {
    double max_base_above_chance = 10.0;  // points; exact-match tasks have chance 0
    double min_skill_score = 60.0;        // the skill expert alone, accuracy or exact match in %
};

struct HeldOutVerdict {
    std::string task, skill;
    double chance = 0.0;       // % expected by guessing: 100 / choices, 0 for generation
    double base = 0.0;         // the base model's score, %
    double skill_score = 0.0;  // the skill expert's score alone, %
    bool kept = false;
    std::string reason;  // for a rejected candidate: which condition failed
};

HeldOutVerdict judgeHeldOut(const HeldOutRule& rule, const std::string& task, const std::string& skill,
                            double chance, double base, double skill_score);

// {"rule": {...}, "candidates": [{"task", "skill", "chance", "base", "skill_score", "kept", "reason"}]}
nlohmann::json heldOutRuleJson(const HeldOutRule& rule, const std::vector<HeldOutVerdict>& verdicts);

}  // namespace phatgoose
