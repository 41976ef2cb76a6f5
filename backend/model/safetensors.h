#pragma once
// The safetensors format, without LibTorch: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the raw data.
// Everything is validated before a byte of tensor data is trusted; every failure is a phatgoose::Error
// naming the file (and the tensor). The parser takes a buffer so that it can be fuzzed on its own.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "atomic_file.h"

namespace phatgoose {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

std::string_view dtypeName(DType dtype);  // "F32", ...

// `text` as one printable line for an error message, whatever bytes a hostile file holds: other bytes as
// \xNN, cut with "..." after `limit` characters.
std::string printableText(std::string_view text, size_t limit = 120);
size_t dtypeSize(DType dtype);

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0;  // byte offsets relative to the start of the data section
    uint64_t end = 0;
    int64_t numel() const;
};

struct SafetensorsHeader {
    uint64_t data_offset = 0;         // 8 + N: where the data section starts in the file
    std::vector<TensorInfo> tensors;  // sorted by name
    std::map<std::string, std::string> metadata;
    const TensorInfo* find(const std::string& name) const;  // nullptr when absent
};

// Parses and validates the header of a safetensors file of total size file_size, given at least its
// first 8 + N bytes in `prefix` (the whole file is fine). `file_label` names the file in messages.
// Checks: header length within the file and below a sane cap, JSON well formed, known dtypes, shapes of
// non-negative integers, offsets inside the data section, end - begin == numel * dtype size, no overlaps.
SafetensorsHeader parseSafetensorsHeader(std::string_view prefix, uint64_t file_size,
                                         const std::string& file_label);

// An open safetensors file: header parsed on open, tensor bytes either read on demand with pread or mapped
// in place (mapped(): no copy at all, pages come from disk when first touched).
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::filesystem::path& path);  // throws Error
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const SafetensorsHeader& header() const { return header_; }
    const std::filesystem::path& path() const { return path_; }
    // Copies the tensor's raw little-endian bytes into dst (which holds end - begin bytes).
    void read(const TensorInfo& tensor, void* dst) const;
    // The tensor's bytes inside a private, copy-on-write mapping of the whole file, made on first use and
    // kept until the file object is destroyed: reading them costs no resident copy beyond the page cache's,
    // and a write changes only this process's page. nullptr when the bytes are not aligned for their dtype
    // (a header whose length is not a multiple of 8); read() them instead. The file must not be truncated
    // while mapped (the project's writers replace files by rename, which keeps the mapped inode).
    void* mapped(const TensorInfo& tensor) const;
    // Drops this process's resident pages of the mapping (those never written): a later read faults them
    // back from the page cache or the disk. For after a pass that had to read everything once.
    void releasePages() const;

private:
    std::filesystem::path path_;
    int fd_ = -1;
    uint64_t file_size_ = 0;
    mutable void* map_ = nullptr;
    mutable std::mutex map_mutex_;
    SafetensorsHeader header_;
};

struct TensorToWrite {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const void* data = nullptr;  // numel * dtypeSize bytes, little-endian
};

// Writes atomically: a temporary file beside the target, fsync, then rename. On any failure (a full
// disk included) the target is untouched and the temporary file is removed.
void writeSafetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The same file as one member of a set written together (renamed into place by files.commit()).
void writeSafetensors(FileTransaction& files, const std::filesystem::path& path,
                      const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace phatgoose
