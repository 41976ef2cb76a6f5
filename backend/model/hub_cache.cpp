#include "model/hub_cache.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "error.h"

namespace phatgoose {
namespace fs = std::filesystem;

namespace {

std::string environment(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

// refs/main holds the revision of the main branch; without it, the most recently written snapshot.
fs::path snapshotOf(const fs::path& repo) {
    const fs::path snapshots = repo / "snapshots";
    std::ifstream ref(repo / "refs" / "main");
    std::string revision;
    if (ref >> revision && revision.find_first_of("/\\") == std::string::npos && revision != ".." &&
        fs::is_directory(snapshots / revision))
        return snapshots / revision;
    fs::path newest;
    fs::file_time_type newest_time{};
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(snapshots, ec)) {
        if (!entry.is_directory()) continue;
        const auto time = entry.last_write_time(ec);
        if (newest.empty() || time > newest_time) newest = entry.path(), newest_time = time;
    }
    return newest;
}

}  // namespace

std::vector<fs::path> hubCacheFolders() {
    if (const std::string cache = environment("HF_HUB_CACHE"); !cache.empty()) return {cache};
    if (const std::string home = environment("HF_HOME"); !home.empty()) return {fs::path(home) / "hub"};
    if (const std::string user = environment("HOME"); !user.empty())
        return {fs::path(user) / ".cache" / "huggingface" / "hub"};
    return {};
}

bool looksLikeHubId(const std::string& text) {
    const size_t slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) return false;
    if (text.find('/', slash + 1) != std::string::npos) return false;
    return text[0] != '.' && text[0] != '~' && text.find("..") == std::string::npos &&
           text.find('\\') == std::string::npos;
}

std::vector<std::string> cachedHubModels() {
    const std::string prefix = "models--";
    std::vector<std::string> ids;
    for (const fs::path& cache : hubCacheFolders()) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(cache, ec)) {
            const std::string name = entry.path().filename().string();
            const size_t split = name.find("--", prefix.size());
            if (name.rfind(prefix, 0) != 0 || split == std::string::npos || !entry.is_directory(ec)) continue;
            const std::string id =
                name.substr(prefix.size(), split - prefix.size()) + "/" + name.substr(split + 2);
            const fs::path snapshot = snapshotOf(entry.path());
            if (looksLikeHubId(id) && !snapshot.empty() && fs::is_regular_file(snapshot / "config.json", ec))
                ids.push_back(id);
        }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

fs::path resolveModelFolder(const std::string& model) {
    std::error_code ec;
    if (fs::is_directory(model, ec) || !looksLikeHubId(model)) return model;
    const std::string repo_name =
        "models--" + model.substr(0, model.find('/')) + "--" + model.substr(model.find('/') + 1);
    std::string looked;
    for (const fs::path& cache : hubCacheFolders()) {
        const fs::path repo = cache / repo_name;
        looked += (looked.empty() ? "" : ", ") + repo.string();
        if (!fs::is_directory(repo, ec)) continue;
        const fs::path snapshot = snapshotOf(repo);
        if (!snapshot.empty()) return snapshot;
    }
    throw Error(
        "'" + model + "' is neither a model folder nor a model in the local Hugging Face cache (looked in " +
        (looked.empty() ? std::string("no cache folder: HF_HUB_CACHE, HF_HOME and HOME are unset") : looked) +
        "); nothing is downloaded: fetch it with huggingface-cli on a machine with network access");
}

}  // namespace phatgoose
