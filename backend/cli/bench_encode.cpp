#include "cli/bench_encode.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "cli/bench_measure.h"
#include "cli/published_shapes.h"
#include "error.h"
#include "model/t5_model.h"

extern char** environ;

namespace phatgoose {
namespace {

// The two shapes measured against llama.cpp in issue #15: key suffix and published shape.
const std::pair<const char*, const char*> kShapes[] = {{"_small", "flan-small"}, {"_base", "base"}};

template <typename F>
double medianMs(int reps, F&& f) {
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        auto t0 = BenchClock::now();
        f();
        ms.push_back(std::chrono::duration<double, std::milli>(BenchClock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

double encoderFlopsOneSequence(const T5Config& c, double len) {
    const double linear =
        2.0 * len * (4.0 * c.d_model * c.innerDim() + (c.gated ? 3.0 : 2.0) * c.d_model * c.d_ff);
    const double attention = 2.0 * 2.0 * len * len * c.innerDim();  // scores and weighted sum
    return c.num_layers * (linear + attention);
}

// The encoder's matrix products alone, on the model's own weights and the encode's shapes (the attention's
// as the encoder runs them: one per head on strided views): what the forward pass would cost if everything
// between the products were free.
double matmulsOnlyMs(T5ModelImpl& m, int64_t len, int reps) {
    const T5Config& c = m.config();
    const int64_t inner = c.innerDim();
    torch::Tensor x = torch::randn({1, len, c.d_model}), projected = torch::randn({1, len, inner});
    torch::Tensor ff = torch::randn({1, len, c.d_ff});
    torch::Tensor scores = torch::randn({c.num_heads, len, len}), context = torch::empty({len, inner});
    auto head = [&](int64_t h) { return projected[0].narrow(1, h * c.d_kv, c.d_kv); };
    auto pass = [&] {
        for (auto& block : m.encoder->blocks) {
            const T5Attention& a = block->layers[0]->attention;
            for (const T5Linear& l : {a->q, a->k, a->v}) project(x, l->weight);
            for (int64_t h = 0; h < c.num_heads; ++h) {
                torch::Tensor s = scores[h], out = context.narrow(1, h * c.d_kv, c.d_kv);
                torch::mm_out(s, head(h), head(h).t());
                torch::mm_out(out, s, head(h));
            }
            project(projected, a->o->weight);
            const T5Dense& d = block->layers.back()->dense;
            if (d->wi) {
                project(x, d->wi->weight);
            } else {
                project(x, d->wi_0->weight);
                project(x, d->wi_1->weight);
            }
            project(ff, d->wo->weight);
        }
    };
    pass();
    return bestSeconds(reps, pass) * 1e3;
}

}  // namespace

nlohmann::json encodeBatchOneBench(double gemm_gflops, int rounds) {
    torch::InferenceMode guard;
    nlohmann::json r;
    for (const auto& [suffix, shape] : kShapes) {
        const T5Config config = *publishedT5Shape(shape);
        T5Model model(config);
        for (auto& p : model->parameters()) p.normal_(0.0, 0.05);
        torch::Tensor ids = torch::randint(3, 32000, {1, 128}), mask = torch::ones_like(ids);
        model->encode(ids, mask);
        const double ms = bestSeconds(rounds, [&] { model->encode(ids, mask); }) * 1e3;
        const double matmul_ms = matmulsOnlyMs(*model, 128, rounds);
        const double gflops = encoderFlopsOneSequence(config, 128) / (ms * 1e6);
        const std::string s = suffix;
        r["encode_b1_128_ms" + s] = ms;
        r["encode_b1_128_gflops" + s] = gflops;
        r["encode_b1_fraction_of_gemm" + s] = gflops / gemm_gflops;
        r["encode_b1_matmuls_ms" + s] = matmul_ms;
        r["encode_b1_vs_its_matmuls" + s] = ms / matmul_ms;
    }
    return r;
}

void encodeLoop(const std::string& name, int passes) {
    torch::InferenceMode guard;
    for (const auto& [suffix, shape] : kShapes) {
        if (suffix != "_" + name) continue;
        T5Model model(*publishedT5Shape(shape));
        for (auto& p : model->parameters()) p.normal_(0.0, 0.05);
        torch::Tensor ids = torch::randint(3, 32000, {1, 128}), mask = torch::ones_like(ids);
        for (int i = 0; i < passes; ++i) model->encode(ids, mask);
        if (const char* trace = std::getenv("PHATGOOSE_ENCODE_TRACE")) {
            torch::autograd::profiler::RecordProfile profile(trace);
            model->encode(ids, mask);
        }
        return;
    }
    throw Error("bench: --encode-loop takes small or base, not '" + name + "'");
}

double cliStartupMs(int runs) {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    return medianMs(runs, [&] {
        char* argv[] = {const_cast<char*>(self.c_str()), const_cast<char*>("--version"), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        pid_t pid = 0;
        const int failed = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        int status = 0;
        if (failed || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw Error("bench: '" + self + " --version' did not run");
    });
}

}  // namespace phatgoose
