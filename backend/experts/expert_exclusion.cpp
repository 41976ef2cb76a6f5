#include "experts/expert_exclusion.h"

#include <algorithm>
#include <set>

#include "error.h"

namespace phatgoose {

std::vector<LoraExpert> withoutExperts(std::vector<LoraExpert> experts,
                                       const std::vector<std::string>& excluded) {
    const std::set<std::string> names(excluded.begin(), excluded.end());
    for (const std::string& name : names) {
        const bool known =
            std::any_of(experts.begin(), experts.end(), [&](const LoraExpert& e) { return e.name == name; });
        if (known) continue;
        std::string library;
        for (const LoraExpert& e : experts) library.append(library.empty() ? "" : ", ").append(e.name);
        throw Error("cannot exclude expert '" + name + "': the library has " + library);
    }
    std::erase_if(experts, [&](const LoraExpert& e) { return names.count(e.name) > 0; });
    if (experts.empty()) throw Error("excluding every expert leaves nothing to route among");
    return experts;
}

}  // namespace phatgoose
