#include "routing/routing_methods.h"

#include <algorithm>

#include "error.h"

namespace phatgoose {

const std::vector<RoutingMethod>& routingMethods() {
    // clang-format off
    static const std::vector<RoutingMethod> table{
        // id                                  name                  label                 description
        //   top-k  experts gates  examples one-expert
        {RoutingMethodId::Base,              "base",               "Base model",
         "the base model, no experts",
            false,  false,  false, false,   false},
        {RoutingMethodId::Single,            "single",             "Single expert",
         "one expert everywhere",
            false,  true,   false, false,   true},
        {RoutingMethodId::Merge,             "merge",              "Uniform merge",
         "the uniform average of every expert's weight update",
            false,  true,   false, false,   false},
        {RoutingMethodId::Retrieval,         "retrieval",          "Retrieval",
         "per example, the expert with the most similar training example",
            false,  true,   false, true,    false},
        {RoutingMethodId::AverageActivation, "average-activation", "Average activation",
         "top-k by the experts' mean training activations",
            true,   true,   false, true,    false},
        {RoutingMethodId::Arrow,             "arrow",              "Arrow",
         "top-k by each expert's top singular vector",
            true,   true,   false, false,   false},
        {RoutingMethodId::Phatgoose,         "phatgoose",          "PHATGOOSE",
         "top-k by the trained PHATGOOSE gates",
            true,   true,   true,  false,   false},
    };
    // clang-format on
    return table;
}

const RoutingMethod* findRoutingMethod(const std::string& name) {
    const auto& table = routingMethods();
    const auto it =
        std::find_if(table.begin(), table.end(), [&](const RoutingMethod& m) { return m.name == name; });
    return it == table.end() ? nullptr : &*it;
}

const RoutingMethod& routingMethod(const std::string& name) {
    if (const RoutingMethod* m = findRoutingMethod(name)) return *m;
    throw Error("unknown routing method '" + name + "' (choose one of " + routingMethodList() + ")");
}

std::string routingMethodList() {
    std::string list;
    for (const RoutingMethod& m : routingMethods()) list += (list.empty() ? "" : ", ") + m.name;
    return list;
}

const std::string& routingMethodName(RoutingMethodId id) {
    for (const RoutingMethod& m : routingMethods())
        if (m.id == id) return m.name;
    throw Error("routing method table: a method is missing its row");
}

const std::string& defaultRoutingMethod() {
    return routingMethodName(RoutingMethodId::Phatgoose);
}

}  // namespace phatgoose
