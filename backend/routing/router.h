#pragma once
// Every routing method behind one interface. A Router attaches a LinearAdapter to each of the model's
// linear layers that its experts cover, and detaches them when destroyed, so a model is never left routed
// by accident. The methods are the rows of routing_methods.h.
#include <memory>
#include <string>
#include <vector>

#include "experts/lora_expert.h"
#include "model/t5_model.h"
#include "routing/routing_methods.h"
#include "routing/routing_trace.h"

namespace phatgoose {

// Training examples of each expert (library order), tokenized: what retrieval (inputs) and
// average-activation (inputs and targets) need. At most kMaxExamplesPerExpert of each are used.
struct ExpertExamples {
    static constexpr size_t kMaxExamplesPerExpert = 1000;
    std::vector<std::vector<std::vector<int64_t>>> inputs;   // [expert][example] ids, ending with eos
    std::vector<std::vector<std::vector<int64_t>>> targets;  // same shape
};

// Where an adapter records its tokens' routing: the router's trace and the site's index in it. An index
// rather than a pointer, so that adding further sites to the trace never invalidates an earlier adapter's.
class SiteRecorder {
public:
    SiteRecorder() = default;  // records nothing
    SiteRecorder(RoutingTrace* trace, size_t index) : trace_(trace), index_(index) {}
    explicit operator bool() const { return trace_ != nullptr; }
    SiteRouting& operator*() const { return trace_->sites[index_]; }
    SiteRouting* operator->() const { return &trace_->sites[index_]; }

private:
    RoutingTrace* trace_ = nullptr;
    size_t index_ = 0;
};

class Router {
public:
    virtual ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

    const std::string& method() const { return trace_.method; }
    // What the adapters recorded. Read-only: its list of sites is fixed when the router is made.
    const RoutingTrace& trace() const { return trace_; }
    // Drops the recorded rows (keeping the sites), before the next input.
    void clearTrace() { trace_.clearTokens(); }
    // Called with the batch's input ids before it is encoded; methods that route whole examples choose here.
    virtual void beginBatch(const std::vector<std::vector<int64_t>>& /*inputs*/) {}
    // Memory the routing uses: the experts' factors it reads (shared with the library), merged deltas, keys.
    int64_t bytes() const { return bytes_; }
    // Wall time spent inside the adapters (scores, top-k, experts) since the router was made, and how many
    // adapter calls that was: what --timings reports as routing.
    double routingSeconds() const { return clock_->seconds; }
    int64_t routingCalls() const { return clock_->calls; }
    // What the user should know about this routing that is not an error, one sentence each (e.g. experts
    // left out because they have no gate). Callers show them: the CLI on stderr, the workbench in its status.
    const std::vector<std::string>& warnings() const { return warnings_; }
    // Takes the adapters off the model and puts them back, so that a benchmark can interleave base and
    // routed measurements on one model.
    void suspend();
    void resume();

protected:
    friend std::unique_ptr<Router> makeRouter(T5ModelImpl&, const std::vector<LoraExpert>&,
                                              const RoutingSpec&, const ExpertExamples*);
    Router(T5ModelImpl& model, const std::string& method, const std::vector<LoraExpert>& experts,
           int64_t top_k);
    void attach(const T5Linear& linear, std::shared_ptr<LinearAdapter> adapter);
    // A trace entry for a routed layer, and the recorder its adapter writes through.
    SiteRecorder addSite(const LinearSite& site, const std::vector<int64_t>& candidates, int64_t k);
    T5ModelImpl& model_;
    RoutingTrace trace_;
    int64_t bytes_ = 0;
    std::vector<std::string> warnings_;

private:
    struct AdapterClock {
        double seconds = 0.0;
        int64_t calls = 0;
    };
    std::shared_ptr<AdapterClock> clock_ = std::make_shared<AdapterClock>();
    std::vector<std::pair<T5Linear, std::shared_ptr<LinearAdapter>>> attached_;
};

// Validates the spec against the experts (known method, distinct expert names, 1 <= k <= N, a named expert
// exists, gates for gate-based methods: at least one, and all with require_gates; examples given where
// needed) and attaches the router to `model`. Experts a gate-based method leaves out are named in
// warnings().
std::unique_ptr<Router> makeRouter(T5ModelImpl& model, const std::vector<LoraExpert>& experts,
                                   const RoutingSpec& spec, const ExpertExamples* examples = nullptr);

}  // namespace phatgoose
