#pragma once
// Crash-safe writes: write new, then swap. A file is written to a temporary in the target's folder,
// fsynced, renamed over the target, and the folder fsynced; a set of files is written whole before the
// first rename (FileTransaction); a folder is built whole beside its target and swapped in
// (writeFolderAtomically). A cancelled run, a full disk or a crash never leaves a half-written file or
// folder, and what was there before stays byte for byte until the new one is complete. Temporary names are
// unique (".NAME.tmp-..."), never a fixed name that might belong to someone.
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace phatgoose {

// Writes `bytes` to `path` atomically. Throws phatgoose::Error naming the path on any failure, after
// removing the temporary file.
void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes);

// The same, streaming: `write` fills the temporary file's stream.
void writeFileAtomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);

// Files replaced together: each write() goes to a temporary beside its target and is fsynced at once;
// commit() renames them all into place, then removes the files named by remove(). Until commit(), and
// when a write fails, every target is untouched; an uncommitted transaction removes its temporaries.
class FileTransaction {
public:
    FileTransaction();
    ~FileTransaction();
    FileTransaction(const FileTransaction&) = delete;
    FileTransaction& operator=(const FileTransaction&) = delete;

    void write(const std::filesystem::path& path, std::string_view bytes);
    void write(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);
    void remove(const std::filesystem::path& path);  // after the renames, if it exists
    void commit();

private:
    struct Staged;
    std::vector<std::unique_ptr<Staged>> staged_;
    std::vector<std::filesystem::path> removals_;
};

// Builds a whole folder and puts it at `target`: `fill` writes into a fresh, uniquely named folder beside
// `target`; only when it returns is that folder renamed to `target`, or, when `target` exists, swapped with
// it in one step (renameat2 RENAME_EXCHANGE; two renames where the file system cannot) and the old
// contents removed. If `fill` throws, the new folder is removed and `target` is as it was. Callers decide
// beforehand whether `target` may be replaced at all.
void writeFolderAtomically(const std::filesystem::path& target,
                           const std::function<void(const std::filesystem::path&)>& fill);

// A fresh empty folder beside `target` named ".NAME.tmp-TAG-XXXXXX" (mkdtemp). Throws naming `target`.
std::filesystem::path makeStagingFolder(const std::filesystem::path& target, const std::string& tag);

// Puts the complete folder `staged` at `target` as writeFolderAtomically does, removing the old contents.
void replaceFolder(const std::filesystem::path& target, const std::filesystem::path& staged);

}  // namespace phatgoose
