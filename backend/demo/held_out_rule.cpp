#include "demo/held_out_rule.h"

#include <sstream>

namespace phatgoose {

HeldOutVerdict judgeHeldOut(const HeldOutRule& rule, const std::string& task, const std::string& skill,
                            double chance, double base, double skill_score) {
    HeldOutVerdict v{task, skill, chance, base, skill_score, false, ""};
    std::ostringstream why;
    if (base > chance + rule.max_base_above_chance)
        why << "the base model already scores " << base << " (chance " << chance << " + "
            << rule.max_base_above_chance << ")";
    if (skill_score < rule.min_skill_score)
        why << (why.tellp() > 0 ? "; " : "") << "the " << skill << " expert alone scores " << skill_score
            << " (< " << rule.min_skill_score << ")";
    v.reason = why.str();
    v.kept = v.reason.empty();
    return v;
}

nlohmann::json heldOutRuleJson(const HeldOutRule& rule, const std::vector<HeldOutVerdict>& verdicts) {
    nlohmann::json candidates = nlohmann::json::array();
    for (const HeldOutVerdict& v : verdicts)
        candidates.push_back({{"task", v.task},
                              {"skill", v.skill},
                              {"chance", v.chance},
                              {"base", v.base},
                              {"skill_score", v.skill_score},
                              {"kept", v.kept},
                              {"reason", v.reason}});
    return {{"rule",
             {{"max_base_above_chance", rule.max_base_above_chance}, {"min_skill_score", rule.min_skill_score}}},
            {"candidates", candidates}};
}

}  // namespace phatgoose
