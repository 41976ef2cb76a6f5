#include "experts/checked_weights.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "atomic_file.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace phatgoose {

namespace {

constexpr char kFormat[] = "phatgoose-checked-weights";

std::optional<fs::path> userLedgerFile() {
    if (const char* dir = std::getenv("PHATGOOSE_CACHE_DIR"); dir && *dir)
        return fs::path(dir) / "checked-weights.json";
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return fs::path(xdg) / "phatgoose" / "checked-weights.json";
    if (const char* home = std::getenv("HOME"); home && *home)
        return fs::path(home) / ".cache" / "phatgoose" / "checked-weights.json";
    return std::nullopt;
}

// Records are keyed by the file itself (device and inode), not its path: an expert folder staged and then
// moved into place (saving, importing) keeps its record.
std::string fileKey(uint64_t device, uint64_t inode) {
    return std::to_string(device) + ":" + std::to_string(inode);
}

int64_t nanoseconds(const timespec& t) {
    return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace

bool CheckedWeights::Identity::operator==(const Identity& o) const {
    return device == o.device && inode == o.inode && size == o.size && modified_ns == o.modified_ns &&
           changed_ns == o.changed_ns;
}

CheckedWeights& CheckedWeights::forUser() {
    static CheckedWeights ledger(userLedgerFile());
    return ledger;
}

CheckedWeights::CheckedWeights(std::optional<fs::path> ledger_file) : ledger_file_(std::move(ledger_file)) {}

std::optional<CheckedWeights::Identity> CheckedWeights::identityOf(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return Identity{.device = uint64_t(st.st_dev),
                    .inode = uint64_t(st.st_ino),
                    .size = uint64_t(st.st_size),
                    .modified_ns = nanoseconds(st.st_mtim),
                    .changed_ns = nanoseconds(st.st_ctim)};
}

// Anything unexpected in the ledger makes it empty: the worst a damaged ledger can do is cost a re-check.
void CheckedWeights::loadOnce() {
    if (loaded_) return;
    loaded_ = true;
    if (!ledger_file_) return;
    std::ifstream in(*ledger_file_);
    if (!in) return;
    try {
        const json j = json::parse(in);
        if (j.value("format", "") != kFormat) return;
        std::map<std::string, Identity> records;
        for (const auto& [key, r] : j.at("files").items()) {
            Identity id{.device = r.at("device").get<uint64_t>(),
                        .inode = r.at("inode").get<uint64_t>(),
                        .size = r.at("size").get<uint64_t>(),
                        .modified_ns = r.at("modified_ns").get<int64_t>(),
                        .changed_ns = r.at("changed_ns").get<int64_t>(),
                        .order = r.at("order").get<uint64_t>()};
            next_order_ = std::max(next_order_, id.order + 1);
            if (key != fileKey(id.device, id.inode)) return;  // hand-edited
            records.emplace(key, id);
        }
        records_ = std::move(records);
    } catch (const std::exception&) {
        records_.clear();
        next_order_ = 0;
    }
}

void CheckedWeights::save() const {
    json files = json::object();
    for (const auto& [key, id] : records_)
        files[key] = {{"device", id.device},           {"inode", id.inode},           {"size", id.size},
                      {"modified_ns", id.modified_ns}, {"changed_ns", id.changed_ns}, {"order", id.order}};
    const json j{{"format", kFormat}, {"version", 1}, {"files", files}};
    try {
        std::error_code ec;
        fs::create_directories(ledger_file_->parent_path(), ec);
        writeFileAtomically(*ledger_file_, j.dump(1) + "\n");
    } catch (const std::exception&) {
        // A read-only home or a full disk: the files are checked again next time, nothing else is lost.
    }
}

bool CheckedWeights::vouchesFor(const fs::path& file) {
    std::lock_guard lock(mutex_);
    loadOnce();
    const std::optional<Identity> now = identityOf(file);
    if (!now) return false;
    const auto it = records_.find(fileKey(now->device, now->inode));
    return it != records_.end() && *now == it->second;
}

void CheckedWeights::record(const fs::path& file) {
    std::lock_guard lock(mutex_);
    if (!ledger_file_) return;
    // Read again first: another process may have recorded files since this one last looked.
    loaded_ = false;
    loadOnce();
    std::optional<Identity> id = identityOf(file);
    if (!id) return;
    id->order = next_order_++;
    records_[fileKey(id->device, id->inode)] = *id;
    while (records_.size() > kMaxRecords) {
        auto oldest = records_.begin();
        for (auto it = records_.begin(); it != records_.end(); ++it)
            if (it->second.order < oldest->second.order) oldest = it;
        records_.erase(oldest);
    }
    save();
}

}  // namespace phatgoose
