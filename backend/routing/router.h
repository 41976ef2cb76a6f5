#pragma once
// Every routing method behind one interface. A Router attaches a LinearAdapter to each of the model's
// linear layers that its experts cover, and detaches them when destroyed, so a model is never left routed
// by accident. Methods: base, single, merge, retrieval, average-activation, arrow, phatgoose.
#include <memory>
#include <string>
#include <vector>

#include "experts/lora_expert.h"
#include "model/t5_model.h"
#include "routing/routing_trace.h"

namespace phatgoose {

struct RoutingSpec {
    std::string method = "phatgoose";
    int64_t top_k = 2;   // phatgoose, arrow, average-activation
    std::string expert;  // single: the expert's name
    bool record_trace = false;
    bool record_scores = false;
    bool dense_reference = false;  // apply every expert and mask (slow; tests prove the fast path equals it)
};

// Training examples of each expert (library order), tokenized: what retrieval (inputs) and
// average-activation (inputs and targets) need. At most kMaxExamplesPerExpert of each are used.
struct ExpertExamples {
    static constexpr size_t kMaxExamplesPerExpert = 1000;
    std::vector<std::vector<std::vector<int64_t>>> inputs;   // [expert][example] ids, ending with eos
    std::vector<std::vector<std::vector<int64_t>>> targets;  // same shape
};

const std::vector<std::string>& routingMethodNames();
bool routingMethodNeedsExamples(const std::string& method);

class Router {
public:
    virtual ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

    const std::string& method() const { return trace_.method; }
    RoutingTrace& trace() { return trace_; }
    // Called with the batch's input ids before it is encoded; methods that route whole examples choose here.
    virtual void beginBatch(const std::vector<std::vector<int64_t>>& /*inputs*/) {}
    // Memory held for the experts (stacked A and B, merged deltas, keys).
    int64_t bytes() const { return bytes_; }
    // Takes the adapters off the model and puts them back, so that a benchmark can interleave base and
    // routed measurements on one model.
    void suspend();
    void resume();

protected:
    Router(T5ModelImpl& model, const std::string& method, const std::vector<LoraExpert>& experts,
           int64_t top_k);
    void attach(const T5Linear& linear, std::shared_ptr<LinearAdapter> adapter);
    // A trace entry for a routed layer; adapters keep the pointer, so call reserveSites() first.
    SiteRouting& addSite(const LinearSite& site, const std::vector<int64_t>& candidates, int64_t k);
    void reserveSites() { trace_.sites.reserve(model_.linears().size()); }
    T5ModelImpl& model_;
    RoutingTrace trace_;
    int64_t bytes_ = 0;

private:
    std::vector<std::pair<T5Linear, std::shared_ptr<LinearAdapter>>> attached_;
};

// Validates the spec against the experts (known method, 1 <= k <= N, a named expert exists, gates exist for
// phatgoose, examples given where needed) and attaches the router to `model`.
std::unique_ptr<Router> makeRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts,
                                   const RoutingSpec& spec, const ExpertExamples* examples = nullptr);

}  // namespace phatgoose
