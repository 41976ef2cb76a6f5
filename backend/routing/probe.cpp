#include "routing/probe.h"

#include <chrono>

#include "model/generation.h"

namespace phatgoose {

ProbeOutcome probeWithRouter(PretrainedT5& t5, Router& router, const std::string& prompt,
                             int64_t max_new_tokens, int64_t max_input_tokens) {
    ProbeOutcome out;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int64_t> input = t5.tokenizer->encode(prompt);
    out.tokenize_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const size_t length = input.size();
    if (truncateKeepingEos(input, max_input_tokens, t5.config.eos_token_id))
        out.warnings.push_back("the prompt has " + std::to_string(length) + " tokens and was cut to " +
                               std::to_string(input.size()));
    router.clearTrace();
    router.beginBatch({input});
    GenerationOptions options;
    options.max_new_tokens = max_new_tokens;
    options.timings = &out.timings;
    const Generation g = generate(*t5.model, {input}, options).at(0);
    out.output = t5.tokenizer->decode(g.ids);
    out.trace = router.trace();
    for (int64_t id : input) out.trace.encoder_pieces.push_back(t5.tokenizer->idToPiece(id));
    // Decoder rows are the decoder's inputs: the start token, then every generated token but the last.
    out.trace.decoder_pieces.push_back(t5.tokenizer->idToPiece(t5.config.decoder_start_token_id));
    for (size_t i = 0; i + 1 < g.ids.size(); ++i)
        out.trace.decoder_pieces.push_back(t5.tokenizer->idToPiece(g.ids[i]));
    return out;
}

ProbeOutcome probePrompt(PretrainedT5& t5, const std::vector<LoraExpert>& experts, RoutingSpec spec,
                         const std::string& prompt, int64_t max_new_tokens, const ExpertExamples* examples,
                         int64_t max_input_tokens) {
    spec.record_trace = spec.record_scores = true;
    auto router = makeRouter(*t5.model, experts, spec, examples);
    ProbeOutcome out = probeWithRouter(t5, *router, prompt, max_new_tokens, max_input_tokens);
    out.warnings.insert(out.warnings.end(), router->warnings().begin(), router->warnings().end());
    const int64_t input_tokens = int64_t(out.trace.encoder_pieces.size());
    if (spec.pin.active() && spec.pin.first >= input_tokens)
        out.warnings.push_back("the pinned range starts at token " + std::to_string(spec.pin.first) +
                               " but the input has " + std::to_string(input_tokens) +
                               " tokens: no input token was pinned");
    return out;
}

}  // namespace phatgoose
