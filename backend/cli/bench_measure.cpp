#include "cli/bench_measure.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>
#include <vector>

#include "experts/expert_library.h"
#include "model/t5_loader.h"

namespace phatgoose {

double procStatusMb(const std::string& key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
    return -1;
}

double gemmGflops() {
    const int64_t n = 1024;
    torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
    torch::mm_out(c, a, b);
    const double s = bestSeconds(10, [&] { torch::mm_out(c, a, b); });
    return 2.0 * n * n * n / s / 1e9;
}

double copyBandwidthGbs() {
    const int64_t floats = 64 << 20;  // 256 MB: far beyond the caches
    torch::Tensor src = torch::ones({floats}), dst = torch::empty({floats});
    dst.copy_(src);
    const double s = bestSeconds(5, [&] { dst.copy_(src); });
    return 2.0 * double(floats) * sizeof(float) / s / 1e9;  // bytes read + bytes written
}

double readBandwidthGbs() {
    // Two threads, each summing half, as the BF16 decoding kernel reads its weights (model/weight_kernels).
    const int64_t floats = 128 << 20;  // 512 MB
    std::vector<float> src(size_t(floats), 1.0f);
    auto sum = [&](int64_t begin, int64_t end, float* out) {
        float lane[16] = {};
        for (int64_t i = begin; i + 16 <= end; i += 16)
            for (int l = 0; l < 16; ++l) lane[l] += src[size_t(i + l)];
        *out = std::accumulate(std::begin(lane), std::end(lane), 0.0f);
    };
    float a = 0, b = 0;
    auto both = [&] {
        std::thread helper(sum, floats / 2, floats, &b);
        sum(0, floats / 2, &a);
        helper.join();
    };
    both();
    const double s = bestSeconds(5, both);
    if (a + b < 0) throw Error("bench: impossible sum");  // keeps the sums from being optimised away
    return double(floats) * sizeof(float) / s / 1e9;
}

int64_t decoderReadBytes(const T5ModelImpl& m) {
    int64_t n = 0;
    for (const auto& p : m.decoder->named_parameters()) {
        const std::string& key = p.key();
        const bool cached = key.find("EncDecAttention.k.") != std::string::npos ||
                            key.find("EncDecAttention.v.") != std::string::npos;
        if (!cached) n += int64_t(p.value().nbytes());
    }
    const torch::Tensor& head = m.config().tie_word_embeddings ? m.shared->weight : m.lm_head_weight;
    return n + int64_t(head.nbytes());
}

DecodeTiming decodeTiming(T5ModelImpl& m, int steps) {
    torch::InferenceMode guard;
    torch::Tensor ids = torch::randint(3, 32000, {1, 128}), mask = torch::ones_like(ids);
    torch::Tensor enc = m.encode(ids, mask);
    auto at = [&](int64_t position) {
        DecoderCache cache;
        m.decode(torch::randint(3, 32000, {1, position}), enc, mask, &cache);
        double best = 1e30;
        for (int64_t i = 0; i < steps; ++i) {
            torch::Tensor tok = torch::full({1, 1}, 5 + i, torch::kLong);
            auto t0 = BenchClock::now();
            m.decode(tok, enc, mask, &cache).argmax(-1).item<int64_t>();
            best = std::min(best, std::chrono::duration<double, std::milli>(BenchClock::now() - t0).count());
        }
        return best;
    };
    return {at(16), at(128)};
}

double prefillSeconds(T5ModelImpl& m, int64_t batch, int reps) {
    torch::InferenceMode guard;
    torch::Tensor ids = torch::randint(3, 32000, {batch, 128}), mask = torch::ones_like(ids);
    m.encode(ids, mask);
    return bestSeconds(reps, [&] { m.encode(ids, mask); });
}

nlohmann::json openInFreshProcess(const std::filesystem::path& model_dir,
                                  const std::filesystem::path& library_dir,
                                  const std::filesystem::path& cache_dir) {
    std::ostringstream line;  // GCC 12 warns falsely on "literal" + std::string chains
    if (!cache_dir.empty()) line << "PHATGOOSE_CACHE_DIR='" << cache_dir.string() << "' ";
    line << "'" << std::filesystem::read_symlink("/proc/self/exe").string() << "' bench --load-peak-rss '"
         << model_dir.string() << "'";
    if (!library_dir.empty()) line << " --library '" << library_dir.string() << "'";
    const std::string command = line.str();
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) throw Error("bench: cannot start " + command);
    std::string text;
    char buffer[4096];
    while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
    if (pclose(pipe) != 0) throw Error("bench: the load measurement failed: " + text);
    return nlohmann::json::parse(text);
}

void evictFromPageCache(const std::filesystem::path& dir) {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ::fdatasync(fd);  // dirty pages cannot be dropped
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
}

void runOpenMeasurement(CommandContext& ctx) {
    const double rss_before = procStatusMb("VmRSS");
    auto t0 = BenchClock::now();
    PretrainedT5 t5 = loadPretrainedT5(ctx.value("load-peak-rss"), {.load_tokenizer = false});
    nlohmann::json r{{"weights_mb", double(t5.weight_bytes) / 1e6},
                     {"model_open_s", std::chrono::duration<double>(BenchClock::now() - t0).count()},
                     {"rss_before_load_mb", rss_before}};
    if (ctx.parser.isSet("library")) {
        auto t1 = BenchClock::now();
        const ExpertLibrary library = ExpertLibrary::open(ctx.value("library"), t5.config);
        r["library_open_s"] = std::chrono::duration<double>(BenchClock::now() - t1).count();
        r["library_mb"] = double(library.parameterBytes()) / 1e6;
        r["library_experts"] = library.experts().size();
    }
    r["peak_rss_mb"] = procStatusMb("VmHWM");
    ctx.out << r.dump() << "\n";
}

}  // namespace phatgoose
