#include "cli/routing_options.h"

#include "error.h"
#include "experts/expert_exclusion.h"
#include "experts/expert_library.h"
#include "routing/expert_examples.h"

namespace phatgoose {

void declareRoutingOptions(QCommandLineParser& p) {
    const RoutingSpec defaults;
    const QString default_method = QString::fromStdString(defaults.method);
    const QString default_k = QString::number(defaults.top_k);
    p.addOption({"experts", "Expert library folder (a folder of PEFT adapter folders).", "DIR"});
    p.addOption({"adapter", "A PEFT LoRA adapter folder; repeat to form an ad-hoc library.", "DIR"});
    p.addOption({"method",
                 QString::fromStdString("Routing method: " + routingMethodList() + " (default ") +
                     default_method + ").",
                 "NAME", default_method});
    p.addOption({"top-k", "Experts kept per token and module (default " + default_k + ").", "K", default_k});
    p.addOption({"expert", "The expert for --method single.", "NAME"});
    p.addOption({"expert-data",
                 "Folder of <expert>.jsonl training files (retrieval, average-activation); "
                 "default: each expert's recorded training dataset.",
                 "DIR"});
    p.addOption(
        {"require-gates",
         "Refuse gate-based methods when some experts have no gate (default: route among the gated ones "
         "and say which were left out)."});
    declareExcludeOption(p);
    p.addOption({"pin",
                 "What-if: this expert takes every routed module, with weight 1, for the --pin-tokens span "
                 "(token-wise methods only).",
                 "NAME"});
    p.addOption({"pin-tokens",
                 "Input token positions the pin covers, 0-based and inclusive: 3-7, 5, or 4- (default: every "
                 "input token).",
                 "FROM-TO"});
    p.addOption({"pin-output", "The pin also covers every generated (decoder) token."});
}

namespace {

// "3-7", "5" or "4-" into the pin's inclusive range.
void parsePinTokens(const QString& text, TokenPin& pin) {
    const QStringList parts = text.split('-');
    bool ok_first = false, ok_last = true;
    pin.first = parts[0].trimmed().toLongLong(&ok_first);
    pin.last = pin.first;
    if (parts.size() == 2)
        pin.last = parts[1].trimmed().isEmpty() ? -1 : parts[1].trimmed().toLongLong(&ok_last);
    if (parts.size() > 2 || !ok_first || !ok_last || pin.first < 0 || (pin.last >= 0 && pin.last < pin.first))
        throw UsageError("--pin-tokens: expected FROM-TO, FROM or FROM- with 0 <= FROM <= TO, got '" +
                         text.toStdString() + "'");
}

}  // namespace

TokenPin tokenPin(const CommandContext& ctx) {
    TokenPin pin;
    if (!ctx.parser.isSet("pin")) {
        if (ctx.parser.isSet("pin-tokens") || ctx.parser.isSet("pin-output"))
            throw UsageError("--pin-tokens and --pin-output need --pin NAME");
        return pin;
    }
    pin.expert = ctx.value("pin");
    if (pin.expert.empty()) throw UsageError("--pin: an empty expert name");
    if (ctx.parser.isSet("pin-tokens")) parsePinTokens(ctx.parser.value("pin-tokens"), pin);
    pin.output_tokens = ctx.parser.isSet("pin-output");
    return pin;
}

nlohmann::json tokenPinJson(const TokenPin& pin) {
    if (!pin.active()) return nullptr;
    return {{"expert", pin.expert},
            {"first", pin.first},
            {"last", pin.last},
            {"output_tokens", pin.output_tokens}};
}

void declareExcludeOption(QCommandLineParser& p) {
    p.addOption({"exclude",
                 "Route as if the library lacked these experts (comma-separated names); the others are "
                 "re-normalised.",
                 "NAMES"});
}

std::vector<std::string> excludedExperts(const CommandContext& ctx) {
    std::vector<std::string> names;
    if (!ctx.parser.isSet("exclude")) return names;
    for (const QString& part : ctx.parser.values("exclude").join(',').split(',')) {
        const QString name = part.trimmed();
        if (name.isEmpty())
            throw UsageError("--exclude: an empty expert name in '" + ctx.value("exclude") + "'");
        names.push_back(name.toStdString());
    }
    return names;
}

void declareInputLimit(QCommandLineParser& p) {
    const QString limit = QString::number(kDefaultMaxInputTokens);
    p.addOption({"max-input-tokens",
                 "Cut a longer input to N tokens, eos kept, with a warning (default " + limit + ").", "N",
                 limit});
}

std::vector<int64_t> encodeInput(const CommandContext& ctx, const Tokenizer& tokenizer,
                                 const std::string& text) {
    std::vector<int64_t> ids = tokenizer.encode(text);
    const size_t before = ids.size();
    if (truncateKeepingEos(ids, ctx.integer("max-input-tokens", 2), Tokenizer::kEos))
        ctx.err << "warning: the input has " << before << " tokens and was cut to " << ids.size()
                << " (--max-input-tokens)\n";
    return ids;
}

std::unique_ptr<Router> routerFromOptions(const CommandContext& ctx, PretrainedT5& t5, bool record_trace) {
    const QStringList adapters = ctx.parser.values("adapter");
    if (!ctx.parser.isSet("experts") && adapters.isEmpty()) {
        if (ctx.parser.isSet("method") && routingMethod(ctx.value("method")).needs_experts)
            throw UsageError("--method " + ctx.value("method") + " needs --experts DIR or --adapter DIR");
        return nullptr;
    }
    if (ctx.parser.isSet("experts") && !adapters.isEmpty())
        throw UsageError("give --experts or --adapter, not both");
    std::vector<LoraExpert> experts;
    if (ctx.parser.isSet("experts")) {
        experts = std::move(ExpertLibrary::open(ctx.value("experts"), t5.config).experts());
    } else {
        for (const QString& dir : adapters) experts.push_back(loadLoraExpert(dir.toStdString(), t5.config));
    }
    if (ctx.parser.isSet("exclude")) experts = withoutExperts(std::move(experts), excludedExperts(ctx));
    RoutingSpec spec;
    spec.method = ctx.value("method");
    // One adapter and no explicit method: apply it, as PEFT would.
    if (!ctx.parser.isSet("method") && adapters.size() == 1)
        spec.method = routingMethodName(RoutingMethodId::Single);
    spec.top_k = ctx.integer("top-k", 1);
    spec.expert =
        ctx.parser.isSet("expert") ? ctx.value("expert") : (experts.size() == 1 ? experts[0].name : "");
    spec.record_trace = record_trace;
    spec.record_scores = record_trace;
    spec.require_gates = ctx.parser.isSet("require-gates");
    spec.pin = tokenPin(ctx);
    std::unique_ptr<ExpertExamples> examples;
    if (routingMethod(spec.method).needs_examples) {
        if (!t5.tokenizer) t5.tokenizer = std::make_shared<Tokenizer>(Tokenizer::fromModelDir(t5.dir));
        examples = std::make_unique<ExpertExamples>(
            loadExpertExamples(experts, *t5.tokenizer, ctx.value("expert-data")));
    }
    std::unique_ptr<Router> router = makeRouter(*t5.model, experts, spec, examples.get());
    for (const std::string& w : router->warnings()) ctx.err << "warning: " << w << "\n";
    return router;
}

}  // namespace phatgoose
