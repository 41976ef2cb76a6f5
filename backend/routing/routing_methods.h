#pragma once
// The one table of routing methods: what each is called, what it needs and whether top-k applies. The
// router factory, the evaluator, the CLI and the GUI all ask this table; none of them compares method names.
// Adding a method is one row here and its Router in router.cpp (docs/ARCHITECTURE.md, "How to add ...").
// No LibTorch here: the GUI's views include it.
#include <cstdint>
#include <string>
#include <vector>

namespace phatgoose {

enum class RoutingMethodId { Base, Single, Merge, Retrieval, AverageActivation, Arrow, Phatgoose };

struct RoutingMethod {
    RoutingMethodId id;
    std::string name;         // as the CLI, the database and traces spell it: "average-activation"
    std::string label;        // for people: "Average activation"
    std::string description;  // one line: what picks the experts
    bool uses_top_k;          // routes every token to its top-k experts at every module
    bool needs_experts;       // false only for the base model
    bool needs_gates;         // the experts' trained PHATGOOSE gates are the router keys
    bool needs_examples;      // the experts' training examples (ExpertExamples) build the router
    bool names_an_expert;     // applies one expert named by the user
};

// Every method, in the order menus and help list them.
const std::vector<RoutingMethod>& routingMethods();

// nullptr for an unknown name.
const RoutingMethod* findRoutingMethod(const std::string& name);

// Throws phatgoose::Error naming the unknown method and listing the known ones.
const RoutingMethod& routingMethod(const std::string& name);

// "base, single, merge, ..." for help texts and error messages.
std::string routingMethodList();

// The method a probe or a route starts with when none is chosen.
const std::string& defaultRoutingMethod();

// What-if: one expert takes every routed module, with weight 1, for a span of input tokens and optionally
// for every generated token, whatever the method would have chosen there; the other tokens are routed as
// usual. Only for the token-wise methods (uses_top_k), and only at inference.
struct TokenPin {
    std::string expert;          // empty: nothing is pinned
    int64_t first = 0;           // input token positions, 0-based and inclusive
    int64_t last = -1;           // -1: to the end of the input
    bool output_tokens = false;  // also every decoder token (the generated ones)
    bool active() const { return !expert.empty(); }
    bool coversInput(int64_t position) const { return position >= first && (last < 0 || position <= last); }
};

// One routing configuration: a method of the table and its settings (makeRouter in router.h builds it).
struct RoutingSpec {
    std::string method = defaultRoutingMethod();  // a row of routingMethods()
    int64_t top_k = 2;                            // for the methods with uses_top_k
    std::string expert;                           // single: the expert's name
    bool record_trace = false;
    bool record_scores = false;
    bool dense_reference = false;  // apply every expert and mask (slow; tests prove the fast path equals it)
    // Gate-based methods: refuse a library in which some experts have no gate, instead of routing among the
    // gated ones and warning (Router::warnings()).
    bool require_gates = false;
    TokenPin pin;
};

// The name of a method, for code that asks for one method in particular ("single" for one named expert).
const std::string& routingMethodName(RoutingMethodId id);

}  // namespace phatgoose
