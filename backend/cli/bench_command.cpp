// `phatgoose bench`: the engine's speed and memory as ratios to this machine's own ceilings, all measured
// in one run (the machine is shared and noisy, so absolute timings from different runs do not compare).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>

#include "cli/bench_encode.h"
#include "cli/bench_measure.h"
#include "cli/bench_scale.h"
#include "cli/command.h"
#include "error.h"
#include "experts/lora_expert.h"
#include "model/compute_policy.h"
#include "model/t5_loader.h"
#include "routing/lora_kernels.h"
#include "routing/router.h"
#include "training/expert_trainer.h"
#include "training/gate_trainer.h"

namespace phatgoose {
namespace {

namespace fs = std::filesystem;

T5Config smallConfig() {
    return T5Config::fromJsonText(R"({"model_type": "t5", "vocab_size": 32128, "d_model": 512, "d_kv": 64,
        "d_ff": 2048, "num_layers": 6, "num_heads": 8, "feed_forward_proj": "relu", "tie_word_embeddings": true})",
                                  "t5-small-shaped config");
}

// FLOPs of one encoder pass over `tokens` tokens in sequences of `len`.
double encoderFlops(const T5Config& c, double tokens, double len) {
    const double linear = 2.0 * (4.0 * c.d_model * c.innerDim() + 2.0 * c.d_model * c.d_ff);
    const double attention = 2.0 * 2.0 * len * c.innerDim();
    return tokens * c.num_layers * (linear + attention);
}

// PHATGOOSE's own expert shape: rank 16 on every linear layer, each with a gate.
std::vector<LoraExpert> gatedExperts(const T5Config& config, int count) {
    LoraSettings settings;
    settings.r = 16;
    settings.lora_alpha = 1.0;
    settings.target_modules = LoraSettings::allLinearLeaves(config);
    std::vector<LoraExpert> experts;
    torch::NoGradGuard no_grad;
    for (int i = 0; i < count; ++i) {
        experts.push_back(initLoraExpert("expert" + std::to_string(i), settings, config, uint64_t(i)));
        for (auto& [site, m] : experts.back().modules) {
            m.B.normal_(0.0, 0.01);  // a fresh expert's B is zero; a trained one's is not
            m.gate = torch::randn({m.A.size(1)});
        }
    }
    return experts;
}

// Base and routed runs alternate, three rounds, best of each: load from other work on this shared machine
// then hits both sides alike instead of whichever ran during a burst.
void benchRouting(T5ModelImpl& m, nlohmann::json& r) {
    std::vector<LoraExpert> experts = gatedExperts(m.config(), 64);
    r["adapter_mb"] = double(experts.front().parameterBytes()) / 1e6;
    auto router =
        makeRouter(m, experts, {.method = routingMethodName(RoutingMethodId::Phatgoose), .top_k = 2});
    experts.clear();  // the router holds the only copy of the experts' weights
    r["experts"] = 64;
    r["lora_kernels"] = loraIsaName(bestLoraIsa());
    r["experts_mb"] = double(router->bytes()) / 1e6;
    double base_prefill = 1e30, routed_prefill = 1e30, base_decode = 1e30, routed_decode = 1e30;
    for (int round = 0; round < 3; ++round) {
        router->suspend();
        base_prefill = std::min(base_prefill, prefillSeconds(m, 8, 3));
        base_decode = std::min(base_decode, decodeTiming(m).pos16_ms);
        router->resume();
        routed_prefill = std::min(routed_prefill, prefillSeconds(m, 8, 3));
        routed_decode = std::min(routed_decode, decodeTiming(m).pos16_ms);
    }
    r["phatgoose_prefill_vs_base"] = routed_prefill / base_prefill;
    r["phatgoose_decode_vs_base"] = routed_decode / base_decode;
    r["phatgoose_decode_ms_per_token_pos16"] = routed_decode;
    r["phatgoose_prefill_tokens_per_s"] = 1024.0 / routed_prefill;
}

// A synthetic task of 64 examples (about 100 input and 20 target tokens each) and a tokenizer trained on
// it, so that training speed is measured on realistic sequence lengths.
Dataset benchDataset(const fs::path& dir, std::shared_ptr<Tokenizer>& tokenizer) {
    const char* words[] = {"alpha",  "beta", "gamma",    "delta",  "sort",  "reverse", "count", "letters",
                           "number", "word", "question", "answer", "first", "last",    "seven", "three"};
    std::mt19937 rng(3);
    auto sentence = [&](int n) {
        std::string out;
        for (int i = 0; i < n; ++i) out += std::string(i ? " " : "") + words[rng() % std::size(words)];
        return out;
    };
    Dataset data;
    data.name = "bench";
    std::ofstream corpus(dir / "corpus.txt");
    for (int i = 0; i < 64; ++i) {
        Example ex;
        ex.input = sentence(90);
        ex.target = sentence(18);
        ex.line = i + 1;
        corpus << ex.input << "\n" << ex.target << "\n";
        data.examples.push_back(ex);
    }
    corpus.close();
    Tokenizer::train({dir / "corpus.txt", dir / "spiece", 36, "unigram"});
    tokenizer = std::make_shared<Tokenizer>(Tokenizer::fromFile(dir / "spiece.model", 0));
    return data;
}

// Tokens per second of expert training and of gate training on the same batches (batch 8, four steps a
// run), alternating over three rounds, best of each, as for routing.
void benchTraining(T5ModelImpl& m, const fs::path& dir, nlohmann::json& r) {
    std::shared_ptr<Tokenizer> tokenizer;
    const Dataset data = benchDataset(dir, tokenizer);
    ExpertTrainingSettings settings;
    settings.lora.r = 16;
    settings.lora.lora_alpha = 1.0;
    settings.training.steps = 4;
    settings.training.batch_size = 8;
    double expert_rate = 0, gate_rate = 0;
    // Keeps the best rate over whole runs (the rate at the last step averages the run).
    auto keepBest = [steps = settings.training.steps](double& best) {
        return TrainingControl{[&best, steps](const TrainingProgress& p) {
            if (p.step == steps) best = std::max(best, p.tokens_per_s);
        }};
    };
    for (int round = 0; round < 3; ++round) {
        LoraExpert expert =
            ExpertTrainer(m, *tokenizer, settings).train(data, nullptr, keepBest(expert_rate));
        GateTrainer(m, *tokenizer, settings.training).train(expert, data, keepBest(gate_rate));
    }
    r["expert_train_tokens_per_s"] = expert_rate;
    r["gate_train_tokens_per_s"] = gate_rate;
    r["gate_vs_expert_train_speed"] = gate_rate / expert_rate;
}

void runBench(CommandContext& ctx) {
    if (ctx.parser.isSet("load-peak-rss")) return runOpenMeasurement(ctx);
    if (ctx.parser.isSet("scale")) return runScaleBench(ctx);
    applyComputePolicy(ctx.threads());
    if (ctx.parser.isSet("encode-loop"))
        return encodeLoop(ctx.value("encode-loop"), int(ctx.integer("rounds", 1, 100000)));
    torch::manual_seed(0);
    nlohmann::json r;
    r["blas"] = blasDescription();
    r["threads"] = computeThreads().blas;
    r["kernel_threads"] = computeThreads().kernels;
    r["gemm_gflops"] = gemmGflops();
    r["mem_bandwidth_gbs"] = copyBandwidthGbs();
    r.update(encodeBatchOneBench(r["gemm_gflops"].get<double>(), 7));
    r["cli_startup_ms"] = cliStartupMs(5);
    if (ctx.parser.isSet("only-encode")) {
        ctx.out << r.dump(2) << "\n";
        return;
    }

    const T5Config config = smallConfig();
    const fs::path dir = fs::temp_directory_path() / ("phatgoose-bench-" + std::to_string(::getpid()));
    {
        T5Model random(config);
        torch::NoGradGuard no_grad;
        for (auto& p : random->parameters()) p.normal_(0.0, 0.05);
        saveT5(dir, *random);
    }
    r.update(openInFreshProcess(dir));
    PretrainedT5 t5 = loadPretrainedT5(dir, {.load_tokenizer = false});
    r["peak_rss_target_mb"] = 1.3 * r["weights_mb"].get<double>() + 200.0;

    {
        const double s = prefillSeconds(*t5.model, 8, 3);
        r["prefill_tokens_per_s"] = 1024.0 / s;
        r["prefill_gflops"] = encoderFlops(config, 1024, 128) / s / 1e9;
        r["prefill_fraction_of_gemm"] = r["prefill_gflops"].get<double>() / r["gemm_gflops"].get<double>();
    }
    const DecodeTiming d = decodeTiming(*t5.model);
    r["decode_ms_per_token_pos16"] = d.pos16_ms;
    r["decode_ms_per_token_pos128"] = d.pos128_ms;
    r["decode_pos128_vs_pos16"] = d.pos128_ms / d.pos16_ms;
    const double bound_ms =
        double(decoderReadBytes(*t5.model)) / (r["mem_bandwidth_gbs"].get<double>() * 1e9) * 1e3;
    r["decode_bandwidth_bound_ms"] = bound_ms;
    r["decode_fraction_of_bandwidth_bound"] = bound_ms / d.pos16_ms;
    if (!ctx.parser.isSet("skip-routing")) benchRouting(*t5.model, r);
    if (!ctx.parser.isSet("skip-training")) benchTraining(*t5.model, dir, r);
    fs::remove_all(dir);
    ctx.out << r.dump(2) << "\n";
}

}  // namespace

std::vector<Command> benchCommands() {
    return {
        {"bench",
         "Measure speed and memory on a t5-small-shaped random model, or with --scale on a published "
         "T5 shape with N BF16 experts in memory; prints JSON.",
         [](QCommandLineParser& p) {
             p.addOption(threadsOption());
             QCommandLineOption load("load-peak-rss", "Internal: load DIR and print its peak RSS.", "DIR");
             load.setFlags(QCommandLineOption::HiddenFromHelp);
             p.addOption(load);
             p.addOption({"scale",
                          "paper (T5-XL-LM-adapt, 2.85 B parameters), large, base or flan-small: build that "
                          "shape and "
                          "--experts rank-16 experts with gates in memory in BF16 and measure prefill, "
                          "decoding and memory, base against PHATGOOSE top-2 (keys prefixed SCALE_).",
                          "SCALE"});
             p.addOption({"experts", "With --scale: how many experts.", "N", "166"});
             p.addOption(
                 {"rounds", "With --scale: alternating base/PHATGOOSE rounds (best of each).", "N", "2"});
             p.addOption({"write",
                          "With --scale: also write the model and library as BF16 files to DIR "
                          "(DIR/model, DIR/library), for --from.",
                          "DIR"});
             p.addOption({"from",
                          "With --scale: first open DIR/model and DIR/library (written by --write) "
                          "in a fresh process and report open times and peak RSS.",
                          "DIR"});
             QCommandLineOption library("library", "Internal: with --load-peak-rss, also open this library.",
                                        "DIR");
             library.setFlags(QCommandLineOption::HiddenFromHelp);
             p.addOption(library);
             QCommandLineOption loop("encode-loop",
                                     "Internal: encode SHAPE (small, base) --rounds times, for a profiler.",
                                     "SHAPE");
             loop.setFlags(QCommandLineOption::HiddenFromHelp);
             p.addOption(loop);
             p.addOption({"only-encode", "Measure only the batch-1 encoder shapes and the start-up time."});
             p.addOption({"skip-routing", "Skip the 64-expert PHATGOOSE measurements."});
             p.addOption({"skip-training", "Skip the expert- and gate-training measurements."});
         },
         runBench}};
}

}  // namespace phatgoose
