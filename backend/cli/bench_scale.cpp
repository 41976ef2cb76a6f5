#include "cli/bench_scale.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "cli/bench_measure.h"
#include "cli/published_shapes.h"
#include "experts/lora_expert.h"
#include "model/compute_policy.h"
#include "model/t5_loader.h"
#include "model/tensor_io.h"
#include "model/weight_kernels.h"
#include "routing/lora_kernels.h"
#include "routing/router.h"

namespace phatgoose {
namespace {

namespace fs = std::filesystem;

// Uniform values in [-bound, bound] from a counter-based hash: billions of values in seconds, on every
// thread, reproducible. Statistics are all a speed benchmark needs.
void fillUniform(torch::Tensor& t, uint64_t seed, double bound) {
    const int64_t n = t.numel();
    auto value = [seed, bound](int64_t i) {
        uint64_t z = seed * 0x9E3779B97F4A7C15ull + uint64_t(i) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return float((double(z >> 11) * 0x1.0p-53 * 2.0 - 1.0) * bound);
    };
    if (t.scalar_type() == torch::kBFloat16) {
        auto* p = t.data_ptr<c10::BFloat16>();
        at::parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) p[i] = c10::BFloat16(value(i));
        });
    } else {
        float* p = t.data_ptr<float>();
        at::parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) p[i] = value(i);
        });
    }
}

// Weight matrices in BF16 with the variance of a trained layer (1 / d_in); layer norms at one; position
// biases small. The float32 tensors the constructor made are replaced before they are ever touched.
T5Model bf16Model(const T5Config& config) {
    T5Model model(config);
    torch::NoGradGuard no_grad;
    uint64_t seed = 1;
    for (auto& p : model->named_parameters()) {
        torch::Tensor& t = p.value();
        if (!keepsStoredDtype(p.key(), size_t(t.dim()))) {
            if (p.key().find("layer_norm") != std::string::npos)
                t.fill_(1.0);
            else
                fillUniform(t, seed++, 0.1);
            continue;
        }
        torch::Tensor w = torch::empty(t.sizes(), torch::kBFloat16);
        fillUniform(w, seed++, std::sqrt(3.0 / double(t.size(1))));
        t.set_data(w);
    }
    model->eval();
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    return model;
}

// PHATGOOSE's expert shape: rank 16 on every linear layer with a gate, all BF16.
std::vector<LoraExpert> bf16Experts(const T5Config& config, int64_t count) {
    LoraSettings settings;
    settings.r = 16;
    settings.lora_alpha = 16.0;
    settings.target_modules = LoraSettings::allLinearLeaves(config);
    const std::vector<LinearSite> sites = resolveTargets(settings, config);
    std::vector<LoraExpert> experts(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
        LoraExpert& e = experts[size_t(i)];
        e.name = "expert" + std::to_string(i);
        e.settings = settings;
        uint64_t seed = 1000003 * uint64_t(i + 1);
        for (const LinearSite& site : sites) {
            LoraModule m;
            m.A = torch::empty({16, site.d_in}, torch::kBFloat16);
            m.B = torch::empty({site.d_out, 16}, torch::kBFloat16);
            m.gate = torch::empty({site.d_in}, torch::kBFloat16);
            fillUniform(m.A, seed++, std::sqrt(3.0 / double(site.d_in)));
            fillUniform(m.B, seed++, 0.02);
            fillUniform(m.gate, seed++, 1.0);
            e.modules.emplace(site.path, std::move(m));
        }
    }
    return experts;
}

int64_t expertBytes(const std::vector<LoraExpert>& experts) {
    int64_t n = 0;
    for (const LoraExpert& e : experts) n += e.parameterBytes();
    return n;
}

int64_t modelBytes(const T5ModelImpl& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += int64_t(p.nbytes());
    return n;
}

// What the alternating rounds keep: the best of each side.
struct SideTimes {
    double prefill_b1 = 1e30, prefill_b8 = 1e30, decode16 = 1e30, decode128 = 1e30;
    void keepBest(T5ModelImpl& m) {
        prefill_b1 = std::min(prefill_b1, prefillSeconds(m, 1, 2));
        prefill_b8 = std::min(prefill_b8, prefillSeconds(m, 8, 1));
        const DecodeTiming d = decodeTiming(m, 6);
        decode16 = std::min(decode16, d.pos16_ms);
        decode128 = std::min(decode128, d.pos128_ms);
    }
};

// One feed-forward matrix of the shape ([d_ff, d_model]) as BF16 and as float32, the same values: the BF16
// kernels against BLAS on float32 weights, many rows (prefill) and one row (decoding), best of several.
void compareWithFloat32(const T5Config& config, const std::string& key, nlohmann::json& r) {
    torch::Tensor w = torch::empty({config.d_ff, config.d_model}, torch::kBFloat16);
    fillUniform(w, 99, std::sqrt(3.0 / double(config.d_model)));
    const torch::Tensor w32 = w.to(torch::kFloat);
    const torch::Tensor rows = torch::randn({128, config.d_model}), one = torch::randn({1, config.d_model});
    const torch::Tensor batch = torch::randn({1024, config.d_model});
    torch::InferenceMode guard;
    // Alternating rounds, best of each. Before a two-byte round, OpenBLAS's pool (woken by the float32
    // product) is given time to go back to sleep: its workers spin for a while after each sgemm, on the
    // core the packed product's second thread needs, which would bill BLAS's idle spinning to the kernel.
    double half_many = 1e30, float_many = 1e30, half_batch = 1e30, float_batch = 1e30;
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        half_many = std::min(half_many, bestSeconds(5, [&] { linearProduct(rows, w); }));
        float_many = std::min(float_many, bestSeconds(5, [&] { linearProduct(rows, w32); }));
        half_batch = std::min(half_batch, bestSeconds(2, [&] { linearProduct(batch, w); }));
        float_batch = std::min(float_batch, bestSeconds(2, [&] { linearProduct(batch, w32); }));
    }
    r[key + "bf16_prefill_b8_rate_vs_f32"] = float_batch / half_batch;
    const double half_one = bestSeconds(20, [&] { linearProduct(one, w); });
    const double float_one = bestSeconds(20, [&] { linearProduct(one, w32); });
    r[key + "bf16_prefill_rate_vs_f32"] = float_many / half_many;  // >= 0.8 wanted
    r[key + "bf16_decode_speedup_vs_f32"] = float_one / half_one;  // > 1: half the bytes
}

// Writes the in-memory model and experts as files (BF16), so that opening them from disk can be measured.
void writeScaleFiles(const fs::path& dir, const T5ModelImpl& model, const std::vector<LoraExpert>& experts,
                     std::ostream& err) {
    err << "bench: writing the model to " << (dir / "model").string() << "\n";
    saveT5(dir / "model", model, DType::BF16);
    for (size_t i = 0; i < experts.size(); ++i) {
        if (i % 16 == 0)
            err << "bench: writing experts " << i << ".." << std::min(i + 16, experts.size()) << "\n";
        saveLoraExpert(experts[i], dir / "library" / experts[i].name, DType::BF16);
    }
}

}  // namespace

void runScaleBench(CommandContext& ctx) {
    applyComputePolicy(ctx.threads());
    const std::string scale = ctx.value("scale");
    const std::optional<T5Config> shape = publishedT5Shape(scale);
    if (!shape) throw UsageError("--scale must be paper, large, base or flan-small (got '" + scale + "')");
    const T5Config config = *shape;
    const std::string key = scale + "_";
    const int64_t count = ctx.integer("experts", 1, 4096);
    nlohmann::json r;
    r["blas"] = blasDescription();
    r["threads"] = computeThreads().blas;
    r["kernel_threads"] = computeThreads().kernels;
    r["lora_kernels"] = loraIsaName(bestLoraIsa());
    r["gemm_gflops"] = gemmGflops();
    r["read_bandwidth_gbs"] = readBandwidthGbs();
    if (ctx.parser.isSet("from")) {
        // Opening files from disk, in a fresh process before this one holds anything: the model folder and
        // library that an earlier --write made.
        // Each open starts from a cold page cache. The first, with an empty ledger of checked files, reads
        // every value once to refuse NaN/Inf; the second finds them recorded (experts/checked_weights.h).
        const fs::path from = ctx.value("from");
        const fs::path ledger =
            fs::temp_directory_path() / ("phatgoose-bench-ledger-" + std::to_string(::getpid()));
        fs::remove_all(ledger);
        ctx.err << "bench: opening " << from.string() << " in a fresh process, cold, never opened before\n";
        evictFromPageCache(from);
        const nlohmann::json first = openInFreshProcess(from / "model", from / "library", ledger);
        ctx.err << "bench: opening it again, cold, its values recorded as checked\n";
        evictFromPageCache(from);
        const nlohmann::json opened = openInFreshProcess(from / "model", from / "library", ledger);
        fs::remove_all(ledger);
        r[key + "model_open_s"] = opened["model_open_s"];
        r[key + "library_first_open_s"] = first["library_open_s"];
        r[key + "library_first_open_peak_rss_gb"] = first["peak_rss_mb"].get<double>() * 1024 * 1024 / 1e9;
        r[key + "library_open_s"] = opened["library_open_s"];
        r[key + "library_experts"] = opened["library_experts"];
        r[key + "disk_peak_rss_gb"] = opened["peak_rss_mb"].get<double>() * 1024 * 1024 / 1e9;
        r[key + "disk_weights_gb"] =
            (opened["weights_mb"].get<double>() + opened["library_mb"].get<double>()) / 1e3;
    }
    compareWithFloat32(config, key, r);
    ctx.err << "bench: building the " << scale << "-shaped model and " << count
            << " experts in memory (BF16)\n";
    auto t0 = BenchClock::now();
    T5Model model = bf16Model(config);
    std::vector<LoraExpert> experts = bf16Experts(config, count);
    r[key + "build_s"] = std::chrono::duration<double>(BenchClock::now() - t0).count();
    const double model_gb = double(modelBytes(*model)) / 1e9, experts_gb = double(expertBytes(experts)) / 1e9;
    r[key + "experts"] = count;
    int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    r[key + "parameters_b"] = double(parameters) / 1e9;
    r[key + "model_gb"] = model_gb;
    r[key + "experts_gb"] = experts_gb;
    r[key + "weights_gb"] = model_gb + experts_gb;

    if (ctx.parser.isSet("write")) writeScaleFiles(ctx.value("write"), *model, experts, ctx.err);

    auto router =
        makeRouter(*model, experts, {.method = routingMethodName(RoutingMethodId::Phatgoose), .top_k = 2});
    r[key + "router_gb"] = double(router->bytes()) / 1e9;
    const int rounds = int(ctx.integer("rounds", 1, 10));
    SideTimes base, routed;
    for (int round = 0; round < rounds; ++round) {
        ctx.err << "bench: round " << round + 1 << " of " << rounds << " (base, then PHATGOOSE top-2)\n";
        router->suspend();
        base.keepBest(*model);
        router->resume();
        routed.keepBest(*model);
    }
    r[key + "prefill_tokens_per_s"] = 128.0 / base.prefill_b1;
    r[key + "prefill_b8_tokens_per_s"] = 1024.0 / base.prefill_b8;
    r[key + "decode_ms_per_token_pos16"] = base.decode16;
    r[key + "decode_ms_per_token_pos128"] = base.decode128;
    const double bound_ms =
        double(decoderReadBytes(*model)) / (r["read_bandwidth_gbs"].get<double>() * 1e9) * 1e3;
    r[key + "decode_bandwidth_bound_ms"] = bound_ms;
    r[key + "decode_fraction_of_bandwidth_bound"] = bound_ms / base.decode16;
    r[key + "phatgoose_prefill_vs_base"] = routed.prefill_b1 / base.prefill_b1;
    r[key + "phatgoose_prefill_b8_vs_base"] = routed.prefill_b8 / base.prefill_b8;
    r[key + "phatgoose_decode_vs_base"] = routed.decode16 / base.decode16;
    r[key + "phatgoose_decode_pos128_vs_base"] = routed.decode128 / base.decode128;
    r[key + "phatgoose_decode_ms_per_token_pos16"] = routed.decode16;
    const double peak_gb = procStatusMb("VmHWM") * 1024.0 * 1024.0 / 1e9;
    r[key + "peak_rss_gb"] = peak_gb;
    r[key + "peak_rss_target_gb"] = 1.1 * (model_gb + experts_gb) + 1.0;
    r[key + "peak_rss_vs_weights"] = peak_gb / (model_gb + experts_gb);

    ctx.out << r.dump(2) << "\n";
}

}  // namespace phatgoose
