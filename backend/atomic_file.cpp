#include "atomic_file.h"

#include <fcntl.h>
#include <stdio.h>   // renameat2, RENAME_EXCHANGE
#include <stdlib.h>  // mkdtemp
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <random>
#include <streambuf>
#include <string>
#include <vector>

#include "error.h"

namespace phatgoose {

namespace {

[[noreturn]] void failWrite(const std::filesystem::path& path, const std::string& step, int error) {
    throw Error("cannot write '" + path.string() + "': " + step + ": " + std::strerror(error));
}

// A streambuf straight over a file descriptor, because std::ofstream forgets why a write failed and the
// user deserves "No space left on device" rather than "stream error". The first failure is sticky.
class FdStreamBuf : public std::streambuf {
public:
    explicit FdStreamBuf(int fd) : fd_(fd), buffer_(1 << 16) {
        setp(buffer_.data(), buffer_.data() + buffer_.size());
    }
    int error() const { return error_; }

protected:
    int_type overflow(int_type ch) override {
        if (!drain()) return traits_type::eof();
        if (!traits_type::eq_int_type(ch, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(ch);
            pbump(1);
        }
        return traits_type::not_eof(ch);
    }

    int sync() override { return drain() ? 0 : -1; }

    // Large blocks (tensor data) skip the buffer instead of being copied through it.
    std::streamsize xsputn(const char* data, std::streamsize size) override {
        if (size < static_cast<std::streamsize>(buffer_.size())) return std::streambuf::xsputn(data, size);
        if (!drain() || !writeAll(data, static_cast<size_t>(size))) return 0;
        return size;
    }

private:
    bool drain() {
        const auto pending = static_cast<size_t>(pptr() - pbase());
        if (!writeAll(pbase(), pending)) return false;
        setp(buffer_.data(), buffer_.data() + buffer_.size());
        return true;
    }

    bool writeAll(const char* data, size_t size) {
        constexpr size_t kMaxChunk = size_t{1} << 30;
        while (error_ == 0 && size > 0) {
            const ssize_t written = ::write(fd_, data, std::min(size, kMaxChunk));
            if (written < 0 && errno == EINTR) continue;
            if (written <= 0) {
                error_ = written < 0 ? errno : ENOSPC;
                break;
            }
            data += written;
            size -= static_cast<size_t>(written);
        }
        return error_ == 0;
    }

    int fd_;
    int error_ = 0;
    std::vector<char> buffer_;
};

// A new file beside the target that is removed again unless it was renamed into place. Created with
// mode 0666 (not mkstemp's 0600) so the umask decides the final file's permissions as for any new file.
class TemporaryFile {
public:
    explicit TemporaryFile(const std::filesystem::path& target) : target_(target) {
        std::mt19937_64 random(
            std::random_device{}() ^
            static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
        // Keeps the temporary name within NAME_MAX even for long target names.
        const std::string base = target.filename().string().substr(0, 200) + ".tmp-";
        for (int attempt = 0; attempt < 100; ++attempt) {
            path_ = target.parent_path() / (base + randomSuffix(random));
            fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ >= 0 || errno != EEXIST) break;
        }
        if (fd_ < 0) failWrite(target_, "cannot create a temporary file beside it", errno);
    }

    ~TemporaryFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(path_.c_str());
    }

    TemporaryFile(const TemporaryFile&) = delete;
    TemporaryFile& operator=(const TemporaryFile&) = delete;

    int fd() const { return fd_; }

    // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
    void syncAndClose() {
        if (::fsync(fd_) != 0) failWrite(target_, "fsync failed", errno);
        const int fd = fd_;
        fd_ = -1;
        // Some file systems (NFS) only report write errors on close.
        if (::close(fd) != 0) failWrite(target_, "close failed", errno);
    }

    void renameOverTarget() {
        if (::rename(path_.c_str(), target_.c_str()) != 0) failWrite(target_, "rename failed", errno);
        committed_ = true;
    }

private:
    static std::string randomSuffix(std::mt19937_64& random) {
        static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        std::string suffix(6, ' ');
        for (char& c : suffix) c = kAlphabet[random() % (sizeof(kAlphabet) - 1)];
        return suffix;
    }

    std::filesystem::path target_;
    std::filesystem::path path_;
    int fd_ = -1;
    bool committed_ = false;
};

// Makes the rename itself durable. File systems that cannot fsync a directory say EINVAL; the rename is
// as durable there as it can be made.
void syncFolder(const std::filesystem::path& target) {
    const std::filesystem::path folder = target.has_parent_path() ? target.parent_path() : ".";
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) failWrite(target, "cannot open its folder to fsync it", errno);
    const int result = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (result != 0 && error != EINVAL) failWrite(target, "fsync of its folder failed", error);
}

// Writes a temporary beside `path` through `write` and fsyncs it; the caller renames it.
std::unique_ptr<TemporaryFile> writeTemporary(const std::filesystem::path& path,
                                              const std::function<void(std::ostream&)>& write) {
    auto temporary = std::make_unique<TemporaryFile>(path);
    {
        FdStreamBuf buffer(temporary->fd());
        std::ostream out(&buffer);
        write(out);
        out.flush();
        if (buffer.error() != 0) failWrite(path, "write failed", buffer.error());
        if (!out) failWrite(path, "the output stream failed", EIO);
    }
    temporary->syncAndClose();
    return temporary;
}

[[noreturn]] void failFolder(const std::filesystem::path& target, const std::string& step, int error) {
    throw Error("cannot write the folder '" + target.string() + "': " + step + ": " + std::strerror(error));
}

std::filesystem::path folderOf(const std::filesystem::path& target) {
    return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

}  // namespace

void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes) {
    writeFileAtomically(path, [bytes](std::ostream& out) {
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    });
}

void writeFileAtomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
    writeTemporary(path, write)->renameOverTarget();
    syncFolder(path);
}

struct FileTransaction::Staged {
    std::filesystem::path target;
    std::unique_ptr<TemporaryFile> file;
};

FileTransaction::FileTransaction() = default;
FileTransaction::~FileTransaction() = default;  // uncommitted temporaries unlink themselves

void FileTransaction::write(const std::filesystem::path& path, std::string_view bytes) {
    write(path, [bytes](std::ostream& out) {
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    });
}

void FileTransaction::write(const std::filesystem::path& path,
                            const std::function<void(std::ostream&)>& write) {
    staged_.push_back(std::make_unique<Staged>(Staged{path, writeTemporary(path, write)}));
}

void FileTransaction::remove(const std::filesystem::path& path) {
    removals_.push_back(path);
}

void FileTransaction::commit() {
    // Renames in a folder need no space, so once every file is written the rest cannot fail for lack of it.
    for (auto& s : staged_) s->file->renameOverTarget();
    for (const auto& path : removals_)
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            failWrite(path, "cannot remove the old file", errno);
    for (auto& s : staged_) syncFolder(s->target);
    for (const auto& path : removals_) syncFolder(path);
    staged_.clear();
    removals_.clear();
}

std::filesystem::path makeStagingFolder(const std::filesystem::path& target, const std::string& tag) {
    const std::string name = target.filename().string().substr(0, 180);
    std::string pattern = (folderOf(target) / ("." + name + ".tmp-" + tag + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) failFolder(target, "cannot create a folder beside it", errno);
    return pattern;
}

void replaceFolder(const std::filesystem::path& target, const std::filesystem::path& staged) {
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(target, ec))) {
        if (::rename(staged.c_str(), target.c_str()) != 0) failFolder(target, "rename failed", errno);
        syncFolder(target);
        return;
    }
    // One atomic step: afterwards `staged` holds the old folder.
    if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS) failFolder(target, "cannot swap in the new folder", errno);
        // A file system without RENAME_EXCHANGE: the old folder steps aside, the new one takes its name.
        const std::filesystem::path aside = makeStagingFolder(target, "old");
        if (::rename(target.c_str(), aside.c_str()) != 0) {
            const int error = errno;
            ::rmdir(aside.c_str());
            failFolder(target, "cannot move the old folder aside", error);
        }
        if (::rename(staged.c_str(), target.c_str()) != 0) {
            const int error = errno;
            ::rename(aside.c_str(), target.c_str());  // put the old one back
            failFolder(target, "rename failed", error);
        }
        std::filesystem::remove_all(aside, ec);
        syncFolder(target);
        return;
    }
    syncFolder(target);
    std::filesystem::remove_all(staged, ec);  // the old contents; a leftover costs space, not data
}

void writeFolderAtomically(const std::filesystem::path& target,
                           const std::function<void(const std::filesystem::path&)>& fill) {
    const std::filesystem::path staged = makeStagingFolder(target, "new");
    try {
        fill(staged);
        syncFolder(staged / ".");
        replaceFolder(target, staged);
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(staged, ec);
        throw;
    }
}

}  // namespace phatgoose
