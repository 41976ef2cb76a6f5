#include "demo/demo_install.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>
#include <vector>

#include "atomic_file.h"
#include "error.h"

namespace phatgoose {

namespace fs = std::filesystem;

namespace {

std::string readStamp(const fs::path& copy) {
    std::ifstream in(copy / kDemoStampFile);
    std::string stamp;
    std::getline(in, stamp);
    return stamp;
}

// A folder the user may not write to cannot be emptied by remove_all, and an old copy edited by hand may
// have such folders: they are opened up before removal.
void makeOwnerWritable(const fs::path& dir) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
        const fs::perms extra =
            entry.is_directory() ? fs::perms::owner_all : fs::perms::owner_read | fs::perms::owner_write;
        fs::permissions(entry.path(), extra, fs::perm_options::add);
    }
}

// Not fs::copy: it gives each new folder the source folder's permissions, so a read-only source (0555
// folders) yields a folder nothing can be copied into. Here folders get the user's defaults and files
// their own permissions plus the owner's write bit, since the copy exists to be written to.
void copyTree(const fs::path& from, const fs::path& to) {
    fs::create_directory(to);
    for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
        const fs::path target = to / it->path().lexically_relative(from);
        if (it->is_directory()) {
            fs::create_directory(target);
        } else if (it->is_regular_file()) {
            fs::copy_file(it->path(), target);
            fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
        }
        // Anything else (a socket, a fifo) is no part of a workspace.
    }
}

void removeTree(const fs::path& dir) {
    if (fs::is_directory(fs::symlink_status(dir))) makeOwnerWritable(dir);
    fs::remove_all(dir);
}

// Cleanup on a failure path: the first error is the one to report.
void removeTreeQuietly(const fs::path& dir) noexcept {
    try {
        removeTree(dir);
    } catch (const std::exception&) {
    }
}

std::string uniqueSuffix() {
    std::random_device random;
    std::ostringstream out;
    out << std::hex << random() << random();
    return out.str();
}

}  // namespace

std::string demoFingerprint(const fs::path& shipped) {
    // Count, bytes and the newest mtime change whenever a package or a rebuild replaces any demo file; a
    // content hash would read hundreds of MB of weights at every start of the workbench.
    size_t files = 0;
    uintmax_t bytes = 0;
    fs::file_time_type newest = fs::file_time_type::min();
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(shipped)) {
        if (!entry.is_regular_file()) continue;
        ++files;
        bytes += entry.file_size();
        newest = std::max(newest, entry.last_write_time());
    }
    std::ostringstream out;
    out << "files=" << files << " bytes=" << bytes << " newest=" << newest.time_since_epoch().count();
    return out.str();
}

fs::path userDemoWorkspace(const fs::path& shipped, const fs::path& writable_root) {
    std::error_code ec;
    if (!fs::is_directory(shipped, ec))
        throw Error("no demo workspace at '" + shipped.string() + "': the folder does not exist");
    const fs::path copy = writable_root / "demo";

    std::string fingerprint;
    try {
        fingerprint = demoFingerprint(shipped);
    } catch (const fs::filesystem_error& e) {
        throw Error("cannot read the demo workspace at '" + shipped.string() + "': " + e.code().message());
    }
    if (fs::is_directory(copy, ec) && readStamp(copy) == fingerprint) return copy;

    // Copy beside the destination, then rename: an interrupted copy never looks like a finished one, and a
    // second program starting at the same moment copies into its own staging folder.
    const fs::path staging = writable_root / (".demo-" + uniqueSuffix());
    try {
        fs::create_directories(writable_root);
        copyTree(shipped, staging);
        writeFileAtomically(staging / kDemoStampFile, fingerprint + "\n");
        if (fs::exists(fs::symlink_status(copy))) {
            const fs::path previous = writable_root / "demo.previous";
            removeTree(previous);
            fs::rename(copy, previous);
        }
        fs::rename(staging, copy);
    } catch (const fs::filesystem_error& e) {
        removeTreeQuietly(staging);
        // Another program may have just put the same copy in place.
        if (fs::is_directory(copy, ec) && readStamp(copy) == fingerprint) return copy;
        throw Error("cannot copy the demo workspace from '" + shipped.string() + "' to '" + copy.string() +
                    "': " + e.code().message());
    } catch (const Error&) {
        removeTreeQuietly(staging);
        throw;
    }
    return copy;
}

}  // namespace phatgoose
