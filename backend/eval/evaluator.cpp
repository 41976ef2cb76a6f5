#include "eval/evaluator.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "error.h"
#include "model/generation.h"
#include "model/scoring.h"
#include "routing/expert_examples.h"
#include "store/results_store.h"

namespace phatgoose {

namespace {

using Ids = std::vector<int64_t>;

std::string knownMethods() {
    return routingMethodList() + ", " + routingMethodName(RoutingMethodId::Single) + ":NAME";
}

EvalMethod parseOneMethod(const std::string& item, int64_t top_k) {
    EvalMethod m;
    m.label = item;
    m.spec.top_k = top_k;
    const size_t colon = item.find(':');
    m.spec.method = item.substr(0, colon);
    const RoutingMethod* method = findRoutingMethod(m.spec.method);
    if (!method)
        throw Error("--methods: unknown routing method '" + item + "' (choose from " + knownMethods() + ")");
    if (colon != std::string::npos) {
        m.spec.expert = item.substr(colon + 1);
        if (!method->names_an_expert)
            throw Error("--methods: only '" + routingMethodName(RoutingMethodId::Single) +
                        "' takes an expert name, got '" + item + "'");
    }
    if (method->names_an_expert && m.spec.expert.empty())
        throw Error("--methods: '" + method->name + "' needs an expert name, as " + method->name + ":NAME");
    return m;
}

// The choice of an unlabelled multiple-choice example is still predicted, but it cannot be right or wrong.
bool isLabelled(const Example& ex) {
    return ex.choices.empty() ||
           std::find(ex.choices.begin(), ex.choices.end(), ex.target) != ex.choices.end();
}

std::string metricName(const Dataset& dataset) {
    const auto ranked = std::count_if(dataset.examples.begin(), dataset.examples.end(),
                                      [](const Example& ex) { return !ex.choices.empty(); });
    if (ranked == 0) return "exact_match";
    if (size_t(ranked) == dataset.examples.size()) return "accuracy";
    return "accuracy+exact_match";
}

// Which input ran the machine out of memory: the user can find and fix it, or lower the limits.
[[noreturn]] void reportOutOfMemory(const Dataset& dataset, const std::vector<Ids>& inputs, size_t begin,
                                    size_t end, const std::string& why) {
    size_t longest = begin;
    for (size_t i = begin; i < end; ++i)
        if (inputs[i].size() > inputs[longest].size()) longest = i;
    throw Error(dataset.path.string() + ":" + std::to_string(dataset.examples[longest].line) +
                ": out of memory on the batch holding this example (" +
                std::to_string(inputs[longest].size()) + " input tokens, the batch's longest): " + why +
                "; lower the batch size or the input limit");
}

}  // namespace

std::vector<EvalMethod> parseEvalMethods(const std::string& list, int64_t top_k) {
    std::vector<EvalMethod> methods;
    std::set<std::string> seen;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string item = trimWhitespace(list.substr(start, comma - start));
        start = comma + 1;
        if (item.empty()) continue;
        if (!seen.insert(item).second) throw Error("--methods: '" + item + "' is listed twice");
        methods.push_back(parseOneMethod(item, top_k));
    }
    if (methods.empty())
        throw Error("--methods: no routing method given (choose from " + knownMethods() + ")");
    return methods;
}

double EvalResult::average(const std::string& method) const {
    std::vector<DatasetScore> scores;
    for (const EvalCell& c : cells)
        if (c.method == method) scores.push_back(c.score);
    return averageValue(scores);
}

// Token ids of every example, made once and shared by all methods.
struct Evaluator::Tokenized {
    std::vector<Ids> inputs;
    std::vector<std::vector<Ids>> choices;
};

struct Evaluator::Progress {
    EvalProgress state;
    void report(const EvalHooks& hooks) const {
        if (hooks.progress) hooks.progress(state);
    }
};

Evaluator::Evaluator(T5ModelImpl& model, const Tokenizer& tokenizer, const std::vector<LoraExpert>& experts,
                     const ExpertExamples* examples)
    : model_(model), tokenizer_(tokenizer), experts_(experts), examples_(examples) {}

void Evaluator::checkSettings(const EvalSettings& settings) const {
    if (settings.methods.empty()) throw Error("evaluation: no routing method given");
    if (settings.batch_size < 1) throw Error("evaluation: the batch size must be at least 1");
    if (settings.max_input_tokens < 2) throw Error("evaluation: the input limit must be at least 2 tokens");
    // The cheap mistakes are caught before the first cell, so a grid does not fail half-way through.
    for (const EvalMethod& m : settings.methods) {
        const RoutingMethod& method = routingMethod(m.spec.method);
        if (method.needs_experts && experts_.empty())
            throw Error("routing method '" + m.label + "' needs an expert library (--experts DIR)");
        if (method.names_an_expert &&
            std::none_of(experts_.begin(), experts_.end(),
                         [&](const LoraExpert& e) { return e.name == m.spec.expert; }))
            throw Error("routing method '" + m.label + "': the library has no expert named '" +
                        m.spec.expert + "'");
        if (method.needs_examples && !examples_)
            throw Error("routing method '" + m.label + "' needs the experts' training examples");
    }
}

EvalResult Evaluator::run(const std::vector<Dataset>& datasets, const EvalSettings& settings,
                          const EvalHooks& hooks) {
    checkSettings(settings);
    EvalResult result;
    std::vector<Tokenized> tokens(datasets.size());
    Progress progress;
    for (size_t d = 0; d < datasets.size(); ++d) {
        int64_t cut = 0;
        for (const Example& ex : datasets[d].examples) {
            tokens[d].inputs.push_back(tokenizer_.encode(ex.input));
            cut += truncateKeepingEos(tokens[d].inputs.back(), settings.max_input_tokens, tokenizer_.kEos);
            std::vector<Ids> choices;
            for (const std::string& c : ex.choices) choices.push_back(tokenizer_.encode(c));
            tokens[d].choices.push_back(std::move(choices));
        }
        if (cut > 0)
            result.warnings.push_back(datasets[d].path.string() + ": " + std::to_string(cut) + " of " +
                                      std::to_string(datasets[d].examples.size()) + " inputs were cut to " +
                                      std::to_string(settings.max_input_tokens) + " tokens");
        progress.state.total += int64_t(datasets[d].examples.size() * settings.methods.size());
    }
    for (const EvalMethod& method : settings.methods) {
        auto router = makeRouter(model_, experts_, method.spec, examples_);
        for (const std::string& w : router->warnings())
            if (std::find(result.warnings.begin(), result.warnings.end(), w) == result.warnings.end())
                result.warnings.push_back(w);
        progress.state.method = method.label;
        for (size_t d = 0; d < datasets.size(); ++d) {
            EvalCell cell{
                method.label, routingMethod(method.spec.method).uses_top_k ? method.spec.top_k : 0, d, {}};
            if (!scoreDataset(datasets[d], tokens[d], router.get(), settings, hooks, progress, cell.score)) {
                result.cancelled = true;
                return result;
            }
            if (hooks.cell_done) hooks.cell_done(cell);
            result.cells.push_back(std::move(cell));
        }
    }
    return result;
}

bool Evaluator::scoreDataset(const Dataset& dataset, const Tokenized& tokens, Router* router,
                             const EvalSettings& settings, const EvalHooks& hooks, Progress& progress,
                             DatasetScore& score) {
    score.dataset = dataset.name;
    score.metric = metricName(dataset);
    progress.state.dataset = dataset.name;
    progress.report(hooks);
    const size_t n = dataset.examples.size();
    for (size_t begin = 0; begin < n; begin += size_t(settings.batch_size)) {
        if (hooks.cancel && hooks.cancel->load()) return false;
        const size_t end = std::min(n, begin + size_t(settings.batch_size));
        // Rank-classification rows: every (input, choice) pair of the batch in one padded forward pass.
        std::vector<Ids> rank_inputs, rank_targets, gen_inputs;
        std::vector<size_t> ranked, generated;
        for (size_t i = begin; i < end; ++i) {
            if (tokens.choices[i].empty()) {
                generated.push_back(i);
                gen_inputs.push_back(tokens.inputs[i]);
                continue;
            }
            ranked.push_back(i);
            for (const Ids& c : tokens.choices[i]) {
                rank_inputs.push_back(tokens.inputs[i]);
                rank_targets.push_back(c);
            }
        }
        std::vector<TargetScore> choice_scores;
        std::vector<Generation> generations;
        try {
            if (!ranked.empty()) {
                if (router) router->beginBatch(rank_inputs);
                choice_scores = scoreTargets(model_, rank_inputs, rank_targets);
            }
            if (!generated.empty()) {
                if (router) router->beginBatch(gen_inputs);
                GenerationOptions options;
                options.max_new_tokens = settings.max_new_tokens;
                generations = generate(model_, gen_inputs, options);
            }
        } catch (const std::bad_alloc&) {
            reportOutOfMemory(dataset, tokens.inputs, begin, end, "the allocation failed");
        } catch (const c10::Error& e) {
            const std::string what = e.what();
            if (what.find("allocate") == std::string::npos) throw;
            reportOutOfMemory(dataset, tokens.inputs, begin, end, what.substr(0, what.find('\n')));
        }
        // Predictions in dataset order, whichever pass produced them.
        size_t next_choice = 0, next_rank = 0, next_gen = 0;
        for (size_t i = begin; i < end; ++i) {
            const Example& ex = dataset.examples[i];
            ExamplePrediction p;
            p.index = int64_t(i);
            p.labelled = isLabelled(ex);
            if (next_rank < ranked.size() && ranked[next_rank] == i) {
                ++next_rank;
                size_t best = 0;
                for (size_t c = 1; c < ex.choices.size(); ++c)
                    if (choice_scores[next_choice + c].mean > choice_scores[next_choice + best].mean)
                        best = c;
                p.prediction = ex.choices[best];
                p.score = choice_scores[next_choice + best].mean;
                p.correct = p.labelled && p.prediction == ex.target;
                next_choice += ex.choices.size();
            } else {
                const Generation& g = generations.at(next_gen++);
                p.prediction = tokenizer_.decode(g.ids);
                p.score = g.log_prob;
                p.correct = exactMatch(p.prediction, ex.target);
            }
            score.predictions.push_back(std::move(p));
        }
        progress.state.done += int64_t(end - begin);
        progress.report(hooks);
    }
    scorePredictions(score);
    return true;
}

void appendDataset(std::vector<Dataset>& grid, Dataset dataset) {
    for (const Dataset& other : grid)
        if (other.name == dataset.name)
            throw Error("two datasets are named '" + dataset.name + "' (" + other.path.string() + " and " +
                        dataset.path.string() + "); results are kept by dataset name");
    grid.push_back(std::move(dataset));
}

std::unique_ptr<ExpertExamples> examplesNeededBy(const EvalSettings& settings,
                                                 const std::vector<LoraExpert>& experts,
                                                 const Tokenizer& tokenizer,
                                                 const std::filesystem::path& override_dir) {
    const bool needed =
        std::any_of(settings.methods.begin(), settings.methods.end(),
                    [](const EvalMethod& m) { return routingMethod(m.spec.method).needs_examples; });
    if (!needed || experts.empty()) return nullptr;
    return std::make_unique<ExpertExamples>(loadExpertExamples(experts, tokenizer, override_dir));
}

std::string evalSettingsJson(const std::vector<Dataset>& datasets, const EvalSettings& settings,
                             const std::string& extra_json) {
    nlohmann::json j = nlohmann::json::parse(extra_json.empty() ? "{}" : extra_json);
    for (const EvalMethod& m : settings.methods) j["methods"].push_back(m.label);
    j["top_k"] = settings.methods.empty() ? 0 : settings.methods.front().spec.top_k;
    j["batch_size"] = settings.batch_size;
    j["max_new_tokens"] = settings.max_new_tokens;
    j["max_input_tokens"] = settings.max_input_tokens;
    for (const Dataset& d : datasets)
        j["datasets"].push_back({{"path", d.path.string()},
                                 {"name", d.name},
                                 {"examples", d.examples.size()},
                                 {"skipped_lines", d.skipped_lines}});
    return j.dump();
}

namespace {

std::vector<PredictionRecord> predictionRecords(const EvalCell& cell, const Dataset& dataset) {
    std::vector<PredictionRecord> out;
    for (const ExamplePrediction& p : cell.score.predictions) {
        const Example& ex = dataset.examples.at(size_t(p.index));
        out.push_back({cell.method, cell.top_k, dataset.name, p.index, ex.input, ex.target, p.prediction,
                       p.correct, p.score});
    }
    return out;
}

}  // namespace

StoredEvaluation evaluateIntoStore(Evaluator& evaluator, ResultsStore& store,
                                   const std::vector<Dataset>& datasets, const EvalSettings& settings,
                                   const EvalHooks& hooks, const std::string& settings_json,
                                   const std::string& version) {
    evaluator.checkSettings(settings);  // a refused grid leaves no run behind
    StoredEvaluation stored;
    stored.run = store.beginRun("eval", settings_json, version);
    EvalHooks storing = hooks;
    storing.cell_done = [&](const EvalCell& cell) {
        const Dataset& dataset = datasets.at(cell.dataset_index);
        store.addCell(
            stored.run,
            {cell.method, cell.top_k, dataset.name, cell.score.metric, cell.score.value, cell.score.examples},
            predictionRecords(cell, dataset));
        if (hooks.cell_done) hooks.cell_done(cell);
    };
    try {
        stored.result = evaluator.run(datasets, settings, storing);
    } catch (...) {
        try {
            store.finishRun(stored.run, RunStatus::Failed);
        } catch (const Error&) {
            // The evaluation's own error is the one to report; the run then stays listed as unfinished.
        }
        throw;
    }
    store.finishRun(stored.run, stored.result.cancelled ? RunStatus::Cancelled : RunStatus::Finished);
    return stored;
}

}  // namespace phatgoose
