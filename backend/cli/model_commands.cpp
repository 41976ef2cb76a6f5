// info, tokenize, generate, logits: the engine from the command line.
#include <charconv>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cli/command.h"
#include "cli/routing_options.h"
#include "cli/timing_report.h"
#include "error.h"
#include "model/compute_policy.h"
#include "model/generation.h"
#include "model/model_summary.h"
#include "model/t5_loader.h"

namespace phatgoose {
namespace {

using nlohmann::json;

const QCommandLineOption kModel({"model", "m"}, "Model folder in Hugging Face layout.", "DIR");
const QCommandLineOption kJson("json", "Print JSON instead of text.");

std::string requireModel(const CommandContext& ctx) {
    return ctx.required("model", "DIR");
}

std::vector<int64_t> toIds(const std::vector<long long>& v) {
    return {v.begin(), v.end()};
}

void runInfo(CommandContext& ctx) {
    const auto args = ctx.parser.positionalArguments();
    if (args.size() != 1) throw Error("expected one argument, the model folder");
    const ModelSummary s = summarizeModelFolder(args[0].toStdString());
    const T5Config& c = s.config;
    if (ctx.parser.isSet("json")) {
        ctx.out << json{{"folder", s.folder},
                        {"family", c.family()},
                        {"feed_forward_proj", c.feed_forward_proj},
                        {"d_model", c.d_model},
                        {"d_kv", c.d_kv},
                        {"d_ff", c.d_ff},
                        {"num_heads", c.num_heads},
                        {"encoder_layers", c.num_layers},
                        {"decoder_layers", c.num_decoder_layers},
                        {"vocab_size", c.vocab_size},
                        {"tokenizer_size", s.tokenizer_size},
                        {"parameters", s.parameters},
                        {"weight_dtype", s.weight_dtype},
                        {"weights_mb", s.weights_mb},
                        {"lora_sites", s.lora_sites}}
                       .dump(2)
                << "\n";
        return;
    }
    ctx.out << "Model folder     " << s.folder << "\n"
            << "Family           " << c.family() << "\n"
            << "Shape            d_model " << c.d_model << ", d_kv " << c.d_kv << ", heads " << c.num_heads
            << ", d_ff " << c.d_ff << ", layers " << c.num_layers << " + " << c.num_decoder_layers << "\n"
            << "Vocabulary       " << c.vocab_size << " rows (tokenizer: " << s.tokenizer_size << ")\n"
            << "Parameters       " << s.parameters << " (" << s.weights_mb << " MB as float32)\n"
            << "Stored dtype     " << s.weight_dtype << "\n"
            << "LoRA sites       " << s.lora_sites << " linear layers\n";
}

void runTokenize(CommandContext& ctx) {
    const std::string text = ctx.positionalText();
    Tokenizer tok = Tokenizer::fromModelDir(requireModel(ctx));
    const std::vector<int64_t> ids = tok.encode(text);
    std::vector<std::string> pieces;
    for (int64_t id : ids) pieces.push_back(tok.idToPiece(id));
    if (ctx.parser.isSet("json")) {
        ctx.out << json{{"ids", ids}, {"pieces", pieces}}.dump() << "\n";
        return;
    }
    for (size_t i = 0; i < ids.size(); ++i) ctx.out << ids[i] << "\t" << pieces[i] << "\n";
}

// The load line of --timings: what was loaded, and how big it is as held.
std::string loadDetail(const PretrainedT5& t5) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(2) << double(t5.parameter_count) / 1e6 << " M parameters, "
      << double(t5.weight_bytes) / 1e9 << " GB as " << t5.weight_dtype;
    return s.str();
}

GenerationOptions generationOptions(const CommandContext& ctx) {
    GenerationOptions opt;
    opt.num_beams = ctx.integer("beams", 1);
    opt.max_new_tokens = ctx.integer("max-new-tokens", 1);
    opt.length_penalty = ctx.number("length-penalty");
    return opt;
}

void runGenerate(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const std::string text = ctx.positionalText();
    if (text.empty()) throw Error("no input text given");
    TimingReport timings(ctx.parser.isSet("timings"));
    PretrainedT5 t5 = loadPretrainedT5(requireModel(ctx));
    timings.mark("load", loadDetail(t5));
    GenerationOptions opt = generationOptions(ctx);
    GenerationTimings generation_timings;
    opt.timings = &generation_timings;
    auto router = routerFromOptions(ctx, t5, false);
    if (router) timings.mark("router", "experts gathered, keys standardised");
    const std::vector<int64_t> input = encodeInput(ctx, *t5.tokenizer, text);
    timings.mark("tokenize", std::to_string(input.size()) + " tokens");
    if (router) router->beginBatch({input});
    Generation g = generate(*t5.model, {input}, opt).at(0);
    timings.addGeneration(generation_timings, router.get());
    const PrintTimingsAtExit print_timings(timings, ctx.err);
    if (ctx.parser.isSet("json")) {
        ctx.out
            << json{{"text", t5.tokenizer->decode(g.ids)}, {"ids", g.ids}, {"log_prob", g.log_prob}}.dump()
            << "\n";
        return;
    }
    ctx.out << t5.tokenizer->decode(g.ids) << "\n";
}

// [n, d] float32 rows as a JSON array of arrays, each value the shortest text that reads back as the same
// float32 (NaN and infinities as null, as nlohmann writes them). A logits row is 32128 values: formatting
// them as doubles through nlohmann took 70-120 ms, longer than the forward pass that made them.
void writeRows(std::ostream& out, const torch::Tensor& t) {
    const torch::Tensor c = t.contiguous();
    const float* p = c.data_ptr<float>();
    const int64_t rows = c.size(0), cols = c.size(1);
    std::string text;
    text.reserve(size_t(c.numel()) * 12 + 2 * size_t(rows) + 2);
    char number[32];
    text += '[';
    for (int64_t i = 0; i < rows; ++i) {
        text += i ? ",[" : "[";
        for (int64_t j = 0; j < cols; ++j) {
            if (j) text += ',';
            const float v = p[i * cols + j];
            if (!std::isfinite(v)) {
                text += "null";
                continue;
            }
            const auto written = std::to_chars(number, number + sizeof number, v);
            text.append(number, written.ptr);
        }
        text += ']';
    }
    text += ']';
    out << text;
}

void runLogits(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    ctx.required("input-ids", "IDS");
    TimingReport timings(ctx.parser.isSet("timings"));
    PretrainedT5 t5 = loadPretrainedT5(requireModel(ctx), {.load_tokenizer = false});
    timings.mark("load", loadDetail(t5));
    auto router = routerFromOptions(ctx, t5, false);
    if (router) timings.mark("router", "experts gathered, keys standardised");
    const std::vector<int64_t> input = toIds(ctx.integerList("input-ids"));
    // Parity checks want exactly these ids: a longer input is refused, never cut.
    if (int64_t(input.size()) > ctx.integer("max-input-tokens", 1))
        throw UsageError("--input-ids holds " + std::to_string(input.size()) +
                         " ids, more than --max-input-tokens " + ctx.value("max-input-tokens") +
                         "; raise the limit to run it");
    std::vector<int64_t> decoder = toIds(ctx.integerList("decoder-ids"));
    if (decoder.empty()) decoder = {t5.config.decoder_start_token_id};
    checkTokenIds(t5.config, input, "--input-ids");
    checkTokenIds(t5.config, decoder, "--decoder-ids");
    if (router) router->beginBatch({input});
    torch::InferenceMode guard;
    torch::Tensor ids = torch::tensor(input).unsqueeze(0), mask = torch::ones_like(ids);
    timings.mark("setup");
    const torch::Tensor enc = t5.model->encode(ids, mask);
    timings.mark("encode", std::to_string(input.size()) + " tokens");
    const torch::Tensor logits = t5.model->decode(torch::tensor(decoder).unsqueeze(0), enc, mask)[0];
    timings.mark("decode", std::to_string(decoder.size()) + " tokens, teacher-forced in one pass");
    json greedy_ids;
    if (ctx.parser.isSet("greedy")) {
        GenerationOptions opt;
        opt.max_new_tokens = ctx.integer("greedy", 1);
        opt.encoded = enc;  // the input is encoded once, above
        GenerationTimings greedy_timings;
        opt.timings = &greedy_timings;
        greedy_ids = generate(*t5.model, {input}, opt).at(0).ids;
        timings.addGeneration(greedy_timings, nullptr, "greedy ");
    }
    // Keys in nlohmann's (sorted) order, as this command has always printed them.
    ctx.out << "{\"encoder_last_hidden_state\":";
    writeRows(ctx.out, enc[0]);
    if (!greedy_ids.is_null()) ctx.out << ",\"greedy_ids\":" << greedy_ids.dump();
    ctx.out << ",\"logits\":";
    writeRows(ctx.out, logits);
    ctx.out << "}\n";
    timings.mark("output", "JSON written");
    if (router)
        timings.add("routing", router->routingSeconds() * 1e3, "inside the routed layers, all passes");
    timings.print(ctx.err);
}

}  // namespace

std::vector<Command> modelCommands() {
    auto generationFlags = [](QCommandLineParser& p) {
        const GenerationOptions d;
        const QString beams = QString::number(d.num_beams), tokens = QString::number(d.max_new_tokens),
                      penalty = QString::number(d.length_penalty);
        p.addOption({"beams", "Beam search width; 1 = greedy (default " + beams + ").", "N", beams});
        p.addOption(
            {"max-new-tokens", "Stop after this many new tokens (default " + tokens + ").", "N", tokens});
        p.addOption(
            {"length-penalty", "Beam score = log p / length^P (default " + penalty + ").", "P", penalty});
        declareInputLimit(p);
    };
    return {
        {"info", "Summarise a model folder: family, shape, parameters, weight dtype.",
         [](QCommandLineParser& p) {
             p.addOption(kJson);
             p.addPositionalArgument("MODEL_DIR", "Model folder in Hugging Face layout.");
         },
         runInfo},
        {"tokenize", "Show the token ids and pieces of a text.",
         [](QCommandLineParser& p) {
             p.addOption(kModel);
             p.addOption(kJson);
             p.addPositionalArgument("TEXT", "The text to tokenize.");
         },
         runTokenize},
        {"generate", "Generate a continuation of TEXT (greedy or beam search).",
         [=](QCommandLineParser& p) {
             p.addOption(kModel);
             p.addOption(kJson);
             p.addOption(threadsOption());
             declareTimingsOption(p);
             generationFlags(p);
             declareRoutingOptions(p);
             p.addPositionalArgument("TEXT", "The input text.");
         },
         runGenerate},
        {"logits", "Print teacher-forced logits and encoder states as JSON (for parity checks).",
         [](QCommandLineParser& p) {
             p.addOption(kModel);
             p.addOption(threadsOption());
             declareTimingsOption(p);
             p.addOption({"input-ids", "Encoder input ids, comma separated (e.g. 13,7,5,1).", "IDS"});
             p.addOption({"decoder-ids", "Decoder input ids, starting with the start token 0.", "IDS", "0"});
             p.addOption({"greedy", "Also decode greedily for at most N new tokens.", "N"});
             const QString limit = QString::number(kDefaultMaxInputTokens);
             p.addOption(
                 {"max-input-tokens", "Refuse more input ids than N (default " + limit + ").", "N", limit});
             declareRoutingOptions(p);
         },
         runLogits},
    };
}

}  // namespace phatgoose
