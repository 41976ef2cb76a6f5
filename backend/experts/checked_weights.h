#pragma once
// Which adapter weight files have had every value read and found finite, so that opening them again reads
// only their headers. Refusing NaN/Inf means reading every value, and for the paper's library (166 T5-XL
// experts, 12 GB of BF16) that is the whole of a cold open; checked once, a library opens in seconds and
// pages come in only as routing reads them.
//
// A file is known by its identity on disk: device, inode, size, modification and status-change times (not
// its path, so a folder staged and moved into place keeps its records). Any write, truncation or
// replacement changes one of them, so a record never vouches for different bytes; the one blind spot is a
// same-size rewrite in place within one tick of the file system's clock (a few ms) of the recorded state.
// Records are kept per user in <cache>/phatgoose/checked-weights.json, where <cache> is $PHATGOOSE_CACHE_DIR
// (the folder itself), else $XDG_CACHE_HOME, else ~/.cache. It is a cache: an unreadable or missing ledger
// means "nothing checked yet", and a ledger that cannot be written costs only speed.
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace phatgoose {

class CheckedWeights {
public:
    // The process's ledger, at the location above (none when no location can be determined).
    static CheckedWeights& forUser();
    explicit CheckedWeights(std::optional<std::filesystem::path> ledger_file);

    // True when `file`, as it is on disk now, was recorded as all-finite.
    bool vouchesFor(const std::filesystem::path& file);
    // Records `file` as it is on disk now (call only after every value was checked). Writes the ledger
    // through (atomically); the oldest records go beyond kMaxRecords.
    void record(const std::filesystem::path& file);

    const std::optional<std::filesystem::path>& ledgerFile() const { return ledger_file_; }
    static constexpr size_t kMaxRecords = 8192;

private:
    struct Identity {
        uint64_t device = 0, inode = 0, size = 0;
        int64_t modified_ns = 0, changed_ns = 0;
        uint64_t order = 0;  // when it was recorded, for dropping the oldest
        bool operator==(const Identity& o) const;
    };
    static std::optional<Identity> identityOf(const std::filesystem::path& file);
    void loadOnce();
    void save() const;

    std::mutex mutex_;
    std::optional<std::filesystem::path> ledger_file_;
    bool loaded_ = false;
    uint64_t next_order_ = 0;
    std::map<std::string, Identity> records_;  // by "device:inode"
};

}  // namespace phatgoose
