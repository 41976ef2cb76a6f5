#include "model/pytorch_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <utility>

#include "atomic_file.h"
#include "error.h"

namespace phatgoose {

namespace {

// Limits that no torch.save state dict comes near; each bounds what a hostile file can make us allocate.
constexpr uint64_t kMaxPickleSize = uint64_t{512} << 20;
constexpr size_t kMaxDepth = 1000;
constexpr size_t kMaxObjects = size_t{1} << 22;  // ~25 per tensor: room for 150k tensors
constexpr size_t kMaxDims = 32;
constexpr size_t kMaxStorageKey = 1024;
constexpr uint64_t kMaxCentralDirectory = uint64_t{256} << 20;
constexpr uint64_t kMaxMarkerRecord = 64;
constexpr uint64_t kMaxFormatVersion = 10;  // torch's kMaxSupportedFileFormatVersion
constexpr uint64_t kReadChunk = uint64_t{64} << 20;
constexpr uint64_t kRecordAlignment = 64;

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kMaxComment = 0xffff;
constexpr uint32_t kSaturated32 = 0xffffffff;
constexpr uint16_t kSaturated16 = 0xffff;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPaddingExtraId = 0x4246;  // "FB", the id torch's writer pads with
constexpr uint16_t kDosDate1980 = 0x21;

constexpr const char* kLegacyMessage =
    "a legacy (non-zip) PyTorch file; re-save it with torch.save(obj, path) from torch >= 1.6 (the default "
    "zip format)";

std::string inQuotes(std::string_view text) {
    return "'" + printableText(text) + "'";
}

[[noreturn]] void fail(const std::string& label, const std::string& problem) {
    throw Error(label + ": " + problem);
}

std::string num(uint64_t value) {
    return std::to_string(value);
}

std::string hexByte(uint8_t byte) {
    static const char kHex[] = "0123456789abcdef";
    return std::string("0x") + kHex[byte >> 4] + kHex[byte & 0xf];
}

// Python decodes pickle strings as UTF-8 with surrogates allowed; a string it could not decode is refused.
bool validUtf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        size_t extra = 0;
        uint32_t code = 0;
        uint32_t minimum = 0;
        if (lead < 0x80) {
            ++i;
            continue;
        } else if ((lead & 0xe0) == 0xc0) {
            extra = 1, code = lead & 0x1fu, minimum = 0x80;
        } else if ((lead & 0xf0) == 0xe0) {
            extra = 2, code = lead & 0x0fu, minimum = 0x800;
        } else if ((lead & 0xf8) == 0xf0) {
            extra = 3, code = lead & 0x07u, minimum = 0x10000;
        } else {
            return false;
        }
        if (text.size() - i <= extra) return false;
        for (size_t k = 1; k <= extra; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xc0) != 0x80) return false;
            code = (code << 6) | (next & 0x3fu);
        }
        if (code < minimum || code > 0x10ffff) return false;
        i += extra + 1;
    }
    return true;
}

// Slicing-by-8: the writer checksums every tensor, which for a 30 GB export must not take minutes.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables makeCrcTables() {
    CrcTables tables{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
        tables[0][i] = crc;
    }
    for (size_t slice = 1; slice < 8; ++slice) {
        for (uint32_t i = 0; i < 256; ++i) {
            const uint32_t previous = tables[slice - 1][i];
            tables[slice][i] = (previous >> 8) ^ tables[0][previous & 0xff];
        }
    }
    return tables;
}

constexpr CrcTables kCrcTables = makeCrcTables();

uint32_t load32(const unsigned char* p) {
    return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

uint32_t crc32(const void* data, uint64_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    const CrcTables& t = kCrcTables;
    uint32_t crc = 0xffffffff;
    for (; size >= 8; size -= 8, p += 8) {
        const uint32_t low = crc ^ load32(p);
        const uint32_t high = load32(p + 4);
        crc = t[7][low & 0xff] ^ t[6][(low >> 8) & 0xff] ^ t[5][(low >> 16) & 0xff] ^ t[4][low >> 24] ^
              t[3][high & 0xff] ^ t[2][(high >> 8) & 0xff] ^ t[1][(high >> 16) & 0xff] ^ t[0][high >> 24];
    }
    for (; size > 0; --size, ++p) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    return ~crc;
}

bool isStorableDType(DType dtype) {
    return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

// ---------------------------------------------------------------------------------------------------------
// Where the bytes come from: a file descriptor (pread) or, for the fuzzer and tests, memory.

class ByteSource {
public:
    explicit ByteSource(std::string label, uint64_t size) : label_(std::move(label)), size_(size) {}
    virtual ~ByteSource() = default;
    const std::string& label() const { return label_; }
    uint64_t size() const { return size_; }

    // [offset, offset + count) of the file; `what` names those bytes in messages.
    std::string bytes(uint64_t offset, uint64_t count, const std::string& what) const {
        if (offset > size_ || count > size_ - offset) {
            fail(label_, what + " at offset " + num(offset) + " (" + num(count) +
                             " bytes) lies past the end of the file of " + num(size_) + " bytes");
        }
        std::string out(count, '\0');
        copy(offset, count, out.data(), what);
        return out;
    }

protected:
    virtual void copy(uint64_t offset, uint64_t count, char* out, const std::string& what) const = 0;

private:
    std::string label_;
    uint64_t size_;
};

// pread until every byte arrived: regular files may still return short counts (signals, huge sizes).
void preadFully(int fd, char* out, uint64_t count, uint64_t offset, const std::string& label,
                const std::string& what) {
    while (count > 0) {
        const ssize_t got = ::pread(fd, out, std::min(count, kReadChunk), static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(label, "cannot read " + what + ": " + std::strerror(errno));
        if (got == 0) fail(label, "the file ended while reading " + what + " (was it truncated?)");
        out += got;
        count -= static_cast<uint64_t>(got);
        offset += static_cast<uint64_t>(got);
    }
}

class FileSource : public ByteSource {
public:
    FileSource(int fd, uint64_t size, const std::string& label) : ByteSource(label, size), fd_(fd) {}

protected:
    void copy(uint64_t offset, uint64_t count, char* out, const std::string& what) const override {
        preadFully(fd_, out, count, offset, label(), what);
    }

private:
    int fd_;
};

class MemorySource : public ByteSource {
public:
    MemorySource(std::string_view bytes, const std::string& label)
        : ByteSource(label, bytes.size()), bytes_(bytes) {}

protected:
    void copy(uint64_t offset, uint64_t count, char* out, const std::string&) const override {
        if (count > 0) std::memcpy(out, bytes_.data() + offset, count);
    }

private:
    std::string_view bytes_;
};

// ---------------------------------------------------------------------------------------------------------
// The zip directory.

// Bounds-checked little-endian fields of a zip structure held in memory.
class FieldReader {
public:
    FieldReader(std::string_view bytes, const std::string& label, std::string what)
        : bytes_(bytes), label_(label), what_(std::move(what)) {}

    uint16_t u16() { return static_cast<uint16_t>(little(2)); }
    uint32_t u32() { return static_cast<uint32_t>(little(4)); }
    uint64_t u64() { return little(8); }
    std::string_view take(uint64_t count) {
        if (count > remaining()) fail(label_, what_ + " is truncated");
        const std::string_view out = bytes_.substr(position_, count);
        position_ += count;
        return out;
    }
    uint64_t remaining() const { return bytes_.size() - position_; }

private:
    uint64_t little(int count) {
        const std::string_view field = take(static_cast<uint64_t>(count));
        uint64_t value = 0;
        for (int i = count - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(field[i]);
        return value;
    }

    std::string_view bytes_;
    const std::string& label_;
    std::string what_;
    uint64_t position_ = 0;
};

struct Record {
    uint64_t offset = 0;  // of the entry's data
    uint64_t size = 0;
    uint32_t crc = 0;
};

struct Archive {
    std::string top;  // the folder every entry lives in
    std::map<std::string, Record> records;
};

struct Directory {
    uint64_t entries = 0;
    uint64_t offset = 0;
    uint64_t size = 0;
    uint64_t end = 0;  // where the end records begin: the central directory must stop there
};

struct CentralEntry {
    std::string name;
    uint16_t flags = 0;
    uint16_t method = 0;
    uint32_t crc = 0;
    uint64_t compressed = 0;
    uint64_t size = 0;
    uint64_t local_offset = 0;
    uint32_t disk = 0;
};

void checkIsZip(const ByteSource& source) {
    if (source.size() == 0) fail(source.label(), "the file is empty, not a PyTorch checkpoint");
    if (source.bytes(0, 1, "the first byte")[0] == '\x80') fail(source.label(), kLegacyMessage);
    if (source.size() < kEndSize) {
        fail(source.label(), "not a zip archive (the file has only " + num(source.size()) + " bytes)");
    }
}

// The last end record whose comment length reaches exactly to the end of the file, so that a signature
// inside a comment is not mistaken for the record.
uint64_t findEndRecord(const ByteSource& source) {
    const uint64_t tail_size = std::min(source.size(), kEndSize + kMaxComment);
    const uint64_t tail_start = source.size() - tail_size;
    const std::string tail = source.bytes(tail_start, tail_size, "the end of the file");
    for (uint64_t i = tail_size - kEndSize + 1; i-- > 0;) {
        FieldReader fields(std::string_view(tail).substr(i), source.label(), "the end record");
        if (fields.u32() != kEndSignature) continue;
        fields.take(16);
        if (fields.u16() == tail_size - i - kEndSize) return tail_start + i;
    }
    fail(source.label(),
         "not a zip archive: no end-of-central-directory record was found (is the file truncated?)");
}

std::optional<uint64_t> zip64EndOffset(const ByteSource& source, uint64_t end_record) {
    if (end_record < kZip64LocatorSize) return std::nullopt;
    const uint64_t at = end_record - kZip64LocatorSize;
    const std::string bytes = source.bytes(at, kZip64LocatorSize, "the ZIP64 locator");
    FieldReader fields(bytes, source.label(), "the ZIP64 locator");
    if (fields.u32() != kZip64LocatorSignature) return std::nullopt;
    const uint32_t disk = fields.u32();
    const uint64_t offset = fields.u64();
    if (disk != 0 || fields.u32() > 1) fail(source.label(), "multi-volume zip archives are not supported");
    if (offset > at || at - offset < kZip64EndSize) {
        fail(source.label(), "the ZIP64 locator points past its own position (offset " + num(offset) + ")");
    }
    return offset;
}

Directory readZip64End(const ByteSource& source, uint64_t offset) {
    const std::string& label = source.label();
    const std::string bytes = source.bytes(offset, kZip64EndSize, "the ZIP64 end record");
    FieldReader fields(bytes, label, "the ZIP64 end record");
    if (fields.u32() != kZip64EndSignature) fail(label, "no ZIP64 end record where its locator points");
    if (fields.u64() < kZip64EndSize - 12) fail(label, "the ZIP64 end record is too short");
    fields.take(4);  // versions
    const uint32_t disk = fields.u32();
    const uint32_t directory_disk = fields.u32();
    const uint64_t disk_entries = fields.u64();
    Directory directory{fields.u64(), 0, 0, offset};
    directory.size = fields.u64();
    directory.offset = fields.u64();
    if (disk != 0 || directory_disk != 0 || disk_entries != directory.entries) {
        fail(label, "multi-volume zip archives are not supported");
    }
    return directory;
}

void checkDirectoryBounds(const Directory& directory, const std::string& label) {
    if (directory.offset > directory.end || directory.size > directory.end - directory.offset) {
        fail(label, "the central directory (offset " + num(directory.offset) + ", " + num(directory.size) +
                        " bytes) points past the end of the archive (its end record is at " +
                        num(directory.end) + ")");
    }
    if (directory.size > kMaxCentralDirectory) {
        fail(label, "the central directory of " + num(directory.size) + " bytes exceeds the limit of " +
                        num(kMaxCentralDirectory));
    }
    if (directory.entries == 0) fail(label, "the zip archive is empty");
    if (directory.entries > directory.size / kCentralHeaderSize) {
        fail(label, "the central directory claims " + num(directory.entries) + " entries but its " +
                        num(directory.size) + " bytes cannot hold them");
    }
}

Directory readDirectory(const ByteSource& source) {
    const std::string& label = source.label();
    const uint64_t end_record = findEndRecord(source);
    const std::string bytes = source.bytes(end_record, kEndSize, "the end record");
    FieldReader fields(bytes, label, "the end record");
    fields.u32();
    const uint16_t disk = fields.u16();
    const uint16_t directory_disk = fields.u16();
    const uint16_t disk_entries = fields.u16();
    const uint16_t entries = fields.u16();
    const uint32_t size = fields.u32();
    const uint32_t offset = fields.u32();
    Directory directory{entries, offset, size, end_record};
    if (const std::optional<uint64_t> zip64 = zip64EndOffset(source, end_record)) {
        directory = readZip64End(source, *zip64);
    } else if (entries == kSaturated16 || size == kSaturated32 || offset == kSaturated32) {
        fail(label, "the end record defers to a ZIP64 end record, but the ZIP64 locator is missing");
    } else if (disk != 0 || directory_disk != 0 || disk_entries != entries) {
        fail(label, "multi-volume zip archives are not supported");
    }
    checkDirectoryBounds(directory, label);
    return directory;
}

// The 64-bit values of the fields that hold 0xFFFFFFFF (0xFFFF for the disk), in the order the zip
// specification gives them.
void applyZip64Extra(CentralEntry& entry, std::string_view extra, const std::string& label) {
    const std::string what = "the extra field of entry " + inQuotes(entry.name);
    FieldReader fields(extra, label, what);
    bool found = false;
    while (fields.remaining() > 0) {
        const uint16_t id = fields.u16();
        const std::string_view body = fields.take(fields.u16());
        if (id != kZip64ExtraId) continue;
        if (found) fail(label, what + " holds two ZIP64 fields");
        found = true;
        FieldReader zip64(body, label, "the ZIP64 field of entry " + inQuotes(entry.name));
        if (entry.size == kSaturated32) entry.size = zip64.u64();
        if (entry.compressed == kSaturated32) entry.compressed = zip64.u64();
        if (entry.local_offset == kSaturated32) entry.local_offset = zip64.u64();
        if (entry.disk == kSaturated16) entry.disk = zip64.u32();
    }
    const bool deferred = entry.size == kSaturated32 || entry.compressed == kSaturated32 ||
                          entry.local_offset == kSaturated32 || entry.disk == kSaturated16;
    if (deferred && !found) {
        fail(label, "entry " + inQuotes(entry.name) + " defers a size or offset to a ZIP64 field it lacks");
    }
}

CentralEntry readCentralEntry(FieldReader& fields, uint64_t index, const std::string& label) {
    if (fields.u32() != kCentralHeaderSignature) {
        fail(label, "central directory entry " + num(index) + " has no valid signature");
    }
    CentralEntry entry;
    fields.take(4);  // versions
    entry.flags = fields.u16();
    entry.method = fields.u16();
    fields.take(4);  // time and date
    entry.crc = fields.u32();
    entry.compressed = fields.u32();
    entry.size = fields.u32();
    const uint16_t name_length = fields.u16();
    const uint16_t extra_length = fields.u16();
    const uint16_t comment_length = fields.u16();
    entry.disk = fields.u16();
    fields.take(6);  // attributes
    entry.local_offset = fields.u32();
    entry.name = std::string(fields.take(name_length));
    applyZip64Extra(entry, fields.take(extra_length), label);
    fields.take(comment_length);
    return entry;
}

void checkEntryKind(const CentralEntry& entry, const std::string& label) {
    const std::string name = "entry " + inQuotes(entry.name);
    if (entry.name.empty()) fail(label, "the zip archive has an entry without a name");
    if (entry.flags & 0x41) fail(label, name + " is encrypted");
    if (entry.method != 0) {
        fail(label, name + " is compressed (method " + num(entry.method) +
                        "); torch.save stores its entries uncompressed");
    }
    if (entry.compressed != entry.size) {
        fail(label, name + " is stored but its compressed size " + num(entry.compressed) +
                        " differs from its size " + num(entry.size));
    }
    if (entry.disk != 0) fail(label, "multi-volume zip archives are not supported");
}

// Checks the local header against the central directory and returns where the entry's data begins.
uint64_t dataOffset(const ByteSource& source, const CentralEntry& entry, const Directory& directory) {
    const std::string& label = source.label();
    const std::string name = "entry " + inQuotes(entry.name);
    const uint64_t header_size = kLocalHeaderSize + entry.name.size();
    if (entry.local_offset > directory.offset || directory.offset - entry.local_offset < header_size) {
        fail(label, name + ": local header offset " + num(entry.local_offset) +
                        " points past the records (the central directory starts at " + num(directory.offset) +
                        ")");
    }
    const std::string header = source.bytes(entry.local_offset, header_size, "the local header of " + name);
    FieldReader fields(header, label, "the local header of " + name);
    if (fields.u32() != kLocalHeaderSignature) {
        fail(label, name + ": no local header at offset " + num(entry.local_offset));
    }
    fields.take(4);  // version, flags
    const uint16_t method = fields.u16();
    fields.take(16);  // time, date, crc, sizes
    const uint16_t name_length = fields.u16();
    const uint16_t extra_length = fields.u16();
    const std::string_view local_name = fields.take(entry.name.size());
    if (name_length != entry.name.size() || local_name != entry.name) {
        fail(label, "the local header at offset " + num(entry.local_offset) + " names " +
                        inQuotes(local_name.substr(0, name_length)) + ", but the central directory says " +
                        inQuotes(entry.name));
    }
    if (method != entry.method) fail(label, name + ": the local header disagrees on the compression method");
    const uint64_t data = entry.local_offset + header_size + extra_length;
    if (data > directory.offset || directory.offset - data < entry.size) {
        fail(label, name + ": its " + num(entry.size) + " bytes at offset " + num(data) +
                        " run past the records (the central directory starts at " + num(directory.offset) +
                        ")");
    }
    return data;
}

void addRecord(Archive& archive, const CentralEntry& entry, uint64_t data, const std::string& label) {
    if (archive.records.empty()) {
        const size_t slash = entry.name.find('/');
        if (slash == std::string::npos || slash == 0) {
            fail(label, "entry " + inQuotes(entry.name) +
                            " is not inside a top folder, as every entry torch.save writes is");
        }
        archive.top = entry.name.substr(0, slash);
    } else if (entry.name.compare(0, archive.top.size() + 1, archive.top + "/") != 0) {
        fail(label, "entry " + inQuotes(entry.name) + " is outside the archive's top folder " +
                        inQuotes(archive.top));
    }
    if (!archive.records.emplace(entry.name, Record{data, entry.size, entry.crc}).second) {
        fail(label, "the zip archive holds two entries named " + inQuotes(entry.name));
    }
}

Archive readArchive(const ByteSource& source) {
    const std::string& label = source.label();
    const Directory directory = readDirectory(source);
    const std::string bytes = source.bytes(directory.offset, directory.size, "the central directory");
    FieldReader fields(bytes, label, "the central directory");
    Archive archive;
    for (uint64_t i = 0; i < directory.entries; ++i) {
        const CentralEntry entry = readCentralEntry(fields, i, label);
        checkEntryKind(entry, label);
        addRecord(archive, entry, dataOffset(source, entry, directory), label);
    }
    if (fields.remaining() != 0) {
        fail(label, "the central directory has " + num(fields.remaining()) + " bytes after its " +
                        num(directory.entries) + " entries");
    }
    return archive;
}

const Record* findRecord(const Archive& archive, const std::string& relative) {
    const auto it = archive.records.find(archive.top + "/" + relative);
    return it == archive.records.end() ? nullptr : &it->second;
}

std::string readRecord(const ByteSource& source, const Archive& archive, const std::string& relative,
                       uint64_t limit) {
    const std::string name = archive.top + "/" + relative;
    const Record* record = findRecord(archive, relative);
    if (!record) fail(source.label(), "the archive has no entry " + inQuotes(name));
    if (record->size > limit) {
        fail(source.label(), "entry " + inQuotes(name) + " has " + num(record->size) +
                                 " bytes, more than the limit of " + num(limit));
    }
    std::string bytes = source.bytes(record->offset, record->size, "entry " + inQuotes(name));
    // A zero CRC is what writers that skip checksums leave; anything else must match.
    if (record->crc != 0 && crc32(bytes.data(), bytes.size()) != record->crc) {
        fail(source.label(), "entry " + inQuotes(name) + " fails its CRC-32 check (the file is corrupt)");
    }
    return bytes;
}

bool isTorchScript(const Archive& archive) {
    if (findRecord(archive, "constants.pkl")) return true;
    const std::string code = archive.top + "/code/";
    const auto it = archive.records.lower_bound(code);
    return it != archive.records.end() && it->first.compare(0, code.size(), code) == 0;
}

void checkVersion(const ByteSource& source, const Archive& archive) {
    const std::string relative = findRecord(archive, ".data/version") ? ".data/version" : "version";
    if (!findRecord(archive, relative)) {
        fail(source.label(), "the archive has no entry " + inQuotes(archive.top + "/version") +
                                 "; it is not a torch.save checkpoint");
    }
    std::string text = readRecord(source, archive, relative, kMaxMarkerRecord);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    uint64_t version = 0;
    bool valid = !text.empty() && text.size() <= 4;
    for (char c : text) {
        valid = valid && c >= '0' && c <= '9';
        version = version * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!valid || version < 1 || version > kMaxFormatVersion) {
        fail(source.label(), "unsupported checkpoint format version " + inQuotes(text) + " (1 to " +
                                 num(kMaxFormatVersion) + " are known)");
    }
}

void checkMarkers(const ByteSource& source, const Archive& archive) {
    if (isTorchScript(archive)) {
        fail(source.label(), "a TorchScript archive (torch.jit.save), not a torch.save checkpoint");
    }
    checkVersion(source, archive);
    if (findRecord(archive, "byteorder")) {
        const std::string order = readRecord(source, archive, "byteorder", kMaxMarkerRecord);
        if (order != "little") {
            fail(source.label(), "the checkpoint's byte order is " + inQuotes(order) +
                                     "; only little-endian checkpoints can be read");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The pickle interpreter. Values live in arenas owned by the interpreter and refer to each other by index,
// so shared and even cyclic structures (which the memo makes possible) cost nothing to copy and free.

enum class Kind : uint8_t { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
enum class Callable : uint8_t { OrderedDict, RebuildTensor, FloatStorage, HalfStorage, BFloat16Storage };

struct Value {
    Kind kind = Kind::None;
    int64_t number = 0;  // a Bool's, Int's or Global's value; the arena index of everything else
    double real = 0;
};

struct Container {
    Kind kind = Kind::Tuple;
    bool ordered = false;
    size_t depth = 1;
    std::vector<Value> items;  // a dict's keys and values alternate
};

struct StorageRef {
    DType dtype = DType::F32;
    size_t key = 0;  // string arena index
    int64_t numel = 0;
};

struct TensorRef {
    size_t storage = 0;
    int64_t offset = 0;
    size_t size = 0;  // container indices of int tuples
    size_t stride = 0;
};

struct AllowedGlobal {
    const char* module;
    const char* name;
    Callable callable;
};

constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", Callable::OrderedDict},
    {"torch._utils", "_rebuild_tensor_v2", Callable::RebuildTensor},
    {"torch", "FloatStorage", Callable::FloatStorage},
    {"torch", "HalfStorage", Callable::HalfStorage},
    {"torch", "BFloat16Storage", Callable::BFloat16Storage},
};

std::string callableName(Callable callable) {
    for (const AllowedGlobal& allowed : kAllowedGlobals) {
        if (allowed.callable == callable) return std::string(allowed.module) + "." + allowed.name;
    }
    return "?";
}

std::optional<DType> storageDType(Callable callable) {
    switch (callable) {
        case Callable::FloatStorage:
            return DType::F32;
        case Callable::HalfStorage:
            return DType::F16;
        case Callable::BFloat16Storage:
            return DType::BF16;
        default:
            return std::nullopt;
    }
}

class Unpickler {
public:
    Unpickler(std::string_view pickle, const std::string& label, const std::string& where)
        : pickle_(pickle), label_(label), where_(where) {}

    Value run() {
        while (step()) {
        }
        if (!marks_.empty()) fail("STOP with " + num(marks_.size()) + " MARK(s) still open");
        if (stack_.size() != 1)
            fail("STOP with " + num(stack_.size()) + " values on the stack instead of one");
        if (position_ != pickle_.size()) {
            fail(num(pickle_.size() - position_) + " bytes follow the STOP opcode");
        }
        return stack_.back();
    }

    const Container& container(const Value& value) const { return containers_[index(value)]; }
    const Container& container(size_t index) const { return containers_[index]; }
    const std::string& string(const Value& value) const { return strings_[index(value)]; }
    const std::string& string(size_t index) const { return strings_[index]; }
    const StorageRef& storage(size_t index) const { return storages_[index]; }
    const TensorRef& tensor(const Value& value) const { return tensors_[index(value)]; }

    std::string describe(const Value& value) const {
        switch (value.kind) {
            case Kind::None:
                return "None";
            case Kind::Bool:
                return value.number ? "True" : "False";
            case Kind::Int:
                return "an int (" + std::to_string(value.number) + ")";
            case Kind::Float:
                return "a float";
            case Kind::String:
                return "a string (" + inQuotes(string(value)) + ")";
            case Kind::Tuple:
                return "a tuple";
            case Kind::List:
                return "a list";
            case Kind::Dict:
                return container(value).ordered ? "an OrderedDict" : "a dict";
            case Kind::Global:
                return "the class " + callableName(static_cast<Callable>(value.number));
            case Kind::Storage:
                return "a storage";
            case Kind::Tensor:
                return "a tensor";
        }
        return "?";
    }

private:
    static size_t index(const Value& value) { return static_cast<size_t>(value.number); }

    [[noreturn]] void fail(const std::string& problem) const {
        throw Error(label_ + ": " + where_ + ", offset " + num(opcode_position_) + ": " + problem);
    }

    // -- decoding ---------------------------------------------------------------------------------------

    std::string_view take(uint64_t count, const char* what) {
        if (count > pickle_.size() - position_) {
            fail(std::string(what) + " of " + num(count) + " bytes runs past the end of the pickle" +
                 " (is it truncated?)");
        }
        const std::string_view out = pickle_.substr(position_, count);
        position_ += count;
        return out;
    }

    uint8_t byte(const char* what = "an operand") { return static_cast<unsigned char>(take(1, what)[0]); }

    uint64_t little(int count) {
        const std::string_view bytes = take(static_cast<uint64_t>(count), "an operand");
        uint64_t value = 0;
        for (int i = count - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
        return value;
    }

    std::string_view line() {
        const size_t end = pickle_.find('\n', position_);
        if (end == std::string_view::npos) fail("a GLOBAL name is not terminated by a newline");
        const std::string_view out = pickle_.substr(position_, end - position_);
        position_ = end + 1;
        return out;
    }

    // -- the stack --------------------------------------------------------------------------------------

    size_t base() const { return marks_.empty() ? 0 : marks_.back(); }

    void count() {
        if (++objects_ > kMaxObjects) fail("the pickle builds more than " + num(kMaxObjects) + " objects");
    }

    void push(const Value& value) {
        count();
        stack_.push_back(value);
    }

    Value& top() {
        if (stack_.size() <= base()) fail("stack underflow: the opcode needs a value but the stack is empty");
        return stack_.back();
    }

    std::vector<Value> popN(size_t n) {
        if (stack_.size() - base() < n) {
            fail("stack underflow: the opcode needs " + num(n) + " values but the stack holds " +
                 num(stack_.size() - base()));
        }
        std::vector<Value> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        return items;
    }

    std::vector<Value> popToMark() {
        if (marks_.empty()) fail("the opcode needs a MARK, but none is open");
        const size_t mark = marks_.back();
        marks_.pop_back();
        std::vector<Value> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
        stack_.resize(mark);
        return items;
    }

    void mark() {
        if (marks_.size() >= kMaxDepth)
            fail("the pickle nests MARKs deeper than " + num(kMaxDepth) + " levels");
        marks_.push_back(stack_.size());
    }

    size_t depthOf(const Value& value) const {
        const bool nested = value.kind == Kind::Tuple || value.kind == Kind::List || value.kind == Kind::Dict;
        return nested ? container(value).depth : 0;
    }

    // Nothing here recurses, so depth is policy rather than safety: no real state dict nests deeply.
    void raiseDepth(Container& target, const std::vector<Value>& items) {
        for (const Value& item : items) target.depth = std::max(target.depth, depthOf(item) + 1);
        if (target.depth > kMaxDepth)
            fail("the pickle nests containers deeper than " + num(kMaxDepth) + " levels");
    }

    void pushContainer(Kind kind, std::vector<Value> items, bool ordered = false) {
        Container created{kind, ordered, 1, {}};
        raiseDepth(created, items);
        created.items = std::move(items);
        containers_.push_back(std::move(created));
        push({kind, static_cast<int64_t>(containers_.size() - 1)});
    }

    void pushString(uint64_t length) {
        const std::string_view text = take(length, "a string");
        if (!validUtf8(text)) fail("a string is not valid UTF-8");
        count();
        strings_.emplace_back(text);
        stack_.push_back({Kind::String, static_cast<int64_t>(strings_.size() - 1)});
    }

    // -- opcodes ----------------------------------------------------------------------------------------

    bool step() {
        opcode_position_ = position_;
        if (position_ >= pickle_.size()) fail("the pickle ends without a STOP opcode (is it truncated?)");
        const uint8_t op = byte();
        switch (op) {
            case 0x80:
                return protocol();
            case '.':
                return false;
            case '(':
                mark();
                return true;
            case '}':
                pushContainer(Kind::Dict, {});
                return true;
            case ']':
                pushContainer(Kind::List, {});
                return true;
            case ')':
                pushContainer(Kind::Tuple, {});
                return true;
            case 't':
                pushContainer(Kind::Tuple, popToMark());
                return true;
            case 0x85:
            case 0x86:
            case 0x87:
                pushContainer(Kind::Tuple, popN(op - 0x84u));
                return true;
            default:
                return stepItems(op);
        }
    }

    bool stepItems(uint8_t op) {
        switch (op) {
            case 's':
                setItems(popN(2));
                return true;
            case 'u':
                setItems(popToMark());
                return true;
            case 'a':
                append(popN(1));
                return true;
            case 'e':
                append(popToMark());
                return true;
            case 'b':
                build();
                return true;
            case 'q':
                memoPut(byte());
                return true;
            case 'r':
                memoPut(little(4));
                return true;
            case 0x94:
                memoPut(memo_.size());
                return true;
            case 'h':
                memoGet(byte());
                return true;
            case 'j':
                memoGet(little(4));
                return true;
            default:
                return stepScalar(op);
        }
    }

    bool stepScalar(uint8_t op) {
        switch (op) {
            case 'J':
                push({Kind::Int, static_cast<int32_t>(little(4))});
                return true;
            case 'K':
                push({Kind::Int, byte()});
                return true;
            case 'M':
                push({Kind::Int, static_cast<int64_t>(little(2))});
                return true;
            case 0x8a:
                push({Kind::Int, long1()});
                return true;
            case 'G':
                push({Kind::Float, 0, binaryFloat()});
                return true;
            case 'N':
                push({Kind::None});
                return true;
            case 0x88:
            case 0x89:
                push({Kind::Bool, op == 0x88});
                return true;
            case 'X':
                pushString(little(4));
                return true;
            case 0x8c:
                pushString(byte());
                return true;
            case 0x8d:
                pushString(little(8));
                return true;
            default:
                return stepObject(op);
        }
    }

    bool stepObject(uint8_t op) {
        switch (op) {
            case 'c': {
                const std::string_view module = line();
                pushGlobal(module, line());
                return true;
            }
            case 0x93:
                stackGlobal();
                return true;
            case 'R':
                reduce();
                return true;
            case 'Q':
                persistentId();
                return true;
            case 0x95:
                frame();
                return true;
            case 'B':
            case 'C':
            case 0x8e:
                fail("the pickle holds a bytes object, which a state dict of tensors never does");
            default:
                fail("unsupported pickle opcode " + hexByte(op) +
                     (op >= 0x20 && op < 0x7f ? std::string(" ('") + static_cast<char>(op) + "')" : ""));
        }
    }

    bool protocol() {
        const uint8_t version = byte();
        if (version < 2 || version > 5) fail("unsupported pickle protocol " + num(version));
        return true;
    }

    // Protocol 4 framing only helps a reader that prefetches; the frame's bytes are read as opcodes.
    void frame() {
        const uint64_t length = little(8);
        if (length > pickle_.size() - position_)
            fail("a FRAME of " + num(length) + " bytes runs past the end");
    }

    double binaryFloat() {
        uint64_t bits = 0;
        for (char c : take(8, "a float")) bits = (bits << 8) | static_cast<unsigned char>(c);  // big-endian
        return std::bit_cast<double>(bits);
    }

    int64_t long1() {
        const uint8_t length = byte();
        if (length > 8) fail("an integer of " + num(length) + " bytes does not fit in 64 bits");
        const std::string_view bytes = take(length, "an integer");
        uint64_t value = 0;
        for (size_t i = length; i-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
        const bool negative = length > 0 && (static_cast<unsigned char>(bytes[length - 1]) & 0x80);
        if (negative && length < 8) value |= ~uint64_t{0} << (8 * length);
        return static_cast<int64_t>(value);
    }

    void memoPut(uint64_t index) {
        const Value value = top();
        if (memo_.insert_or_assign(index, value).second) count();
    }

    void memoGet(uint64_t index) {
        const auto it = memo_.find(index);
        if (it == memo_.end()) fail("the pickle reads memo entry " + num(index) + ", which was never stored");
        push(it->second);
    }

    void setItems(const std::vector<Value>& items) {
        if (items.size() % 2 != 0) fail("SETITEMS has a key without a value");
        const Value target = top();
        if (target.kind != Kind::Dict) fail("SETITEM(S) on " + describe(target) + ", not a dict");
        std::set<std::string_view>& keys = dict_keys_[index(target)];
        for (size_t i = 0; i < items.size(); i += 2) {
            if (items[i].kind != Kind::String) fail("a dict key is " + describe(items[i]) + ", not a string");
            if (!keys.insert(string(items[i])).second) {
                fail("the dict repeats the key " + inQuotes(string(items[i])));
            }
        }
        Container& dict = containers_[index(target)];
        raiseDepth(dict, items);
        dict.items.insert(dict.items.end(), items.begin(), items.end());
    }

    void append(const std::vector<Value>& items) {
        const Value target = top();
        if (target.kind != Kind::List) fail("APPEND(S) on " + describe(target) + ", not a list");
        Container& list = containers_[index(target)];
        raiseDepth(list, items);
        list.items.insert(list.items.end(), items.begin(), items.end());
    }

    // An OrderedDict's instance attributes (a state dict's `_metadata`): accepted and ignored.
    void build() {
        const Value state = popN(1)[0];
        const Value target = top();
        if (target.kind != Kind::Dict || !container(target).ordered) {
            fail("BUILD on " + describe(target) + "; only an OrderedDict's attributes are accepted");
        }
        if (state.kind != Kind::Dict && state.kind != Kind::None) {
            fail("BUILD with " + describe(state) + " as an OrderedDict's state");
        }
    }

    void pushGlobal(std::string_view module, std::string_view name) {
        for (const AllowedGlobal& allowed : kAllowedGlobals) {
            if (module == allowed.module && name == allowed.name) {
                push({Kind::Global, static_cast<int64_t>(allowed.callable)});
                return;
            }
        }
        throw Error(label_ + ": refused to load: the pickle names the global '" + printableText(module) +
                    "." + printableText(name) +
                    "', which this reader never executes (only tensors, dicts, lists, numbers and strings "
                    "are allowed)");
    }

    void stackGlobal() {
        const std::vector<Value> items = popN(2);
        if (items[0].kind != Kind::String || items[1].kind != Kind::String) {
            fail("STACK_GLOBAL needs two strings, not " + describe(items[0]) + " and " + describe(items[1]));
        }
        pushGlobal(string(items[0]), string(items[1]));
    }

    void reduce() {
        const std::vector<Value> items = popN(2);
        const Value& callable = items[0];
        const Value& args = items[1];
        if (callable.kind != Kind::Global)
            fail("REDUCE calls " + describe(callable) + ", which is not callable");
        if (args.kind != Kind::Tuple)
            fail("REDUCE passes " + describe(args) + " instead of an argument tuple");
        switch (static_cast<Callable>(callable.number)) {
            case Callable::OrderedDict:
                if (!container(args).items.empty())
                    fail("REDUCE calls collections.OrderedDict with arguments");
                pushContainer(Kind::Dict, {}, true);
                return;
            case Callable::RebuildTensor:
                rebuildTensor(container(args).items);
                return;
            default:
                fail("REDUCE calls " + describe(callable) + ", which this reader never constructs");
        }
    }

    bool isIntTuple(const Value& value) const {
        if (value.kind != Kind::Tuple) return false;
        const std::vector<Value>& items = container(value).items;
        return items.size() <= kMaxDims &&
               std::all_of(items.begin(), items.end(), [](const Value& v) { return v.kind == Kind::Int; });
    }

    bool isEmptyDict(const Value& value) const {
        return value.kind == Kind::Dict && container(value).items.empty();
    }

    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]);
    // the numbers are checked against the storage once the tensor's state-dict key is known.
    void rebuildTensor(const std::vector<Value>& args) {
        const std::string call = "_rebuild_tensor_v2";
        const bool metadata_ok =
            args.size() == 6 || (args.size() == 7 && (args[6].kind == Kind::None || isEmptyDict(args[6])));
        if (!metadata_ok)
            fail(call + " is called with " + num(args.size()) + " arguments or with tensor metadata");
        if (args[0].kind != Kind::Storage) fail(call + "'s storage is " + describe(args[0]));
        if (args[1].kind != Kind::Int) fail(call + "'s storage offset is " + describe(args[1]));
        if (!isIntTuple(args[2]) || !isIntTuple(args[3])) {
            fail(call + "'s size and stride must be tuples of at most " + num(kMaxDims) + " ints");
        }
        if (container(args[2]).items.size() != container(args[3]).items.size()) {
            fail(call + "'s size and stride differ in length");
        }
        if (args[4].kind != Kind::Bool) fail(call + "'s requires_grad is " + describe(args[4]));
        if (!isEmptyDict(args[5])) fail(call + "'s backward hooks are " + describe(args[5]) + ", not empty");
        tensors_.push_back({index(args[0]), args[1].number, index(args[2]), index(args[3])});
        push({Kind::Tensor, static_cast<int64_t>(tensors_.size() - 1)});
    }

    // ('storage', storage_type, key, location, numel), as torch.save's persistent_id writes it.
    void persistentId() {
        const Value pid = popN(1)[0];
        const std::string expected = "('storage', type, key, location, numel)";
        if (pid.kind != Kind::Tuple || container(pid).items.size() != 5) {
            fail("the persistent id " + describe(pid) + " is not " + expected);
        }
        const std::vector<Value>& items = container(pid).items;
        const bool shaped = items[0].kind == Kind::String && string(items[0]) == "storage" &&
                            items[1].kind == Kind::Global && items[2].kind == Kind::String &&
                            items[3].kind == Kind::String && items[4].kind == Kind::Int;
        if (!shaped) fail("the persistent id is not " + expected);
        const std::optional<DType> dtype = storageDType(static_cast<Callable>(items[1].number));
        if (!dtype) fail("the persistent id's storage type is " + describe(items[1]));
        const std::string& key = string(items[2]);
        if (key.empty() || key.size() > kMaxStorageKey) fail("a storage key is empty or too long");
        if (items[4].number < 0) fail("storage " + inQuotes(key) + " has a negative size");
        const auto [claim, inserted] = claims_.try_emplace(key, *dtype, items[4].number);
        if (!inserted && claim->second != std::pair(*dtype, items[4].number)) {
            fail("storage " + inQuotes(key) + " is named twice with different types or sizes");
        }
        storages_.push_back({*dtype, index(items[2]), items[4].number});
        push({Kind::Storage, static_cast<int64_t>(storages_.size() - 1)});
    }

    std::string_view pickle_;
    const std::string& label_;
    const std::string& where_;
    size_t position_ = 0;
    size_t opcode_position_ = 0;
    size_t objects_ = 0;
    std::vector<Value> stack_;
    std::vector<size_t> marks_;
    std::map<uint64_t, Value> memo_;
    std::deque<std::string> strings_;  // a deque: dict key sets point into its strings
    std::vector<Container> containers_;
    std::map<size_t, std::set<std::string_view>> dict_keys_;
    std::vector<StorageRef> storages_;
    std::vector<TensorRef> tensors_;
    std::map<std::string_view, std::pair<DType, int64_t>> claims_;
};

// ---------------------------------------------------------------------------------------------------------
// From the pickle's state dict to validated tensors.

// Finds a storage's record given the byte size its persistent id implies.
using StorageLookup = std::function<std::optional<Record>(const std::string& key, uint64_t claimed_bytes)>;

struct StorageRecords {
    std::string prefix;  // names records in messages: "archive/data/"
    StorageLookup find;
};

std::vector<int64_t> ints(const Container& tuple) {
    std::vector<int64_t> out;
    for (const Value& value : tuple.items) out.push_back(value.number);
    return out;
}

class TensorCheck {
public:
    TensorCheck(const std::string& label, const std::string& name) : label_(label), name_(name) {}

    [[noreturn]] void fail(const std::string& problem) const {
        throw Error(label_ + ": tensor " + inQuotes(name_) + ": " + problem);
    }

    // Elements of `shape`, or a refusal for a negative or overflowing one.
    uint64_t elements(const std::vector<int64_t>& shape) const {
        for (size_t i = 0; i < shape.size(); ++i) {
            if (shape[i] < 0)
                fail("size " + std::to_string(shape[i]) + " of dimension " + num(i) + " is negative");
        }
        if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
        uint64_t product = 1;
        for (int64_t dim : shape) {
            if (__builtin_mul_overflow(product, static_cast<uint64_t>(dim), &product) ||
                product > uint64_t{INT64_MAX}) {
                fail("its shape " + text(shape) + " overflows 64 bits");
            }
        }
        return product;
    }

    // Only dense row-major tensors map to one byte range; size-1 dimensions may carry any stride, as in
    // torch.
    void contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& stride,
                    uint64_t numel) const {
        if (numel == 0) return;
        uint64_t expected = 1;
        for (size_t i = shape.size(); i-- > 0;) {
            if (shape[i] != 1 && (stride[i] < 0 || static_cast<uint64_t>(stride[i]) != expected)) {
                fail("strides " + text(stride) + " are not the contiguous strides of shape " + text(shape) +
                     " (save it after .contiguous())");
            }
            expected *= static_cast<uint64_t>(shape[i]);  // bounded by numel, checked before
        }
    }

    static std::string text(const std::vector<int64_t>& values) {
        std::string out = "[";
        for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
        return out + "]";
    }

private:
    const std::string& label_;
    const std::string& name_;
};

Record storageRecord(const TensorCheck& check, const StorageRef& storage, const std::string& key,
                     const StorageRecords& records) {
    const std::string record = inQuotes(records.prefix + key);
    uint64_t bytes = 0;
    const uint64_t element = dtypeSize(storage.dtype);
    if (__builtin_mul_overflow(static_cast<uint64_t>(storage.numel), element, &bytes)) {
        check.fail("its storage " + record + " claims " + num(storage.numel) +
                   " elements, beyond 64-bit sizes");
    }
    const std::optional<Record> found = records.find(key, bytes);
    if (!found) check.fail("its storage record " + record + " is missing");
    if (found->size != bytes) {
        check.fail("its storage record " + record + " holds " + num(found->size) +
                   " bytes, but the pickle says " + num(storage.numel) + " " +
                   std::string(dtypeName(storage.dtype)) + " elements (" + num(bytes) + " bytes)");
    }
    return *found;
}

CheckpointTensor checkTensor(const Unpickler& pickle, const std::string& name, const TensorRef& ref,
                             const StorageRecords& records, const std::string& label) {
    const TensorCheck check(label, name);
    const StorageRef& storage = pickle.storage(ref.storage);
    CheckpointTensor tensor{name, storage.dtype, ints(pickle.container(ref.size)),
                            pickle.string(storage.key)};
    const Record record = storageRecord(check, storage, tensor.storage, records);
    const uint64_t numel = check.elements(tensor.shape);
    check.contiguous(tensor.shape, ints(pickle.container(ref.stride)), numel);
    if (ref.offset < 0) check.fail("its storage offset " + std::to_string(ref.offset) + " is negative");
    const auto offset = static_cast<uint64_t>(ref.offset);
    const auto available = static_cast<uint64_t>(storage.numel);
    if (offset > available || numel > available - offset) {
        check.fail("its " + num(numel) + " elements at storage offset " + num(offset) +
                   " exceed its storage " + inQuotes(tensor.storage) + " of " + num(available) + " elements");
    }
    const uint64_t element = dtypeSize(storage.dtype);
    tensor.file_offset = record.offset + offset * element;  // within the record, so within the file
    tensor.byte_size = numel * element;
    return tensor;
}

std::vector<CheckpointTensor> stateDictTensors(const Unpickler& pickle, const Value& root,
                                               const StorageRecords& records, const std::string& label) {
    if (root.kind != Kind::Dict) {
        fail(label,
             "the checkpoint holds " + pickle.describe(root) + ", not a state dict (a dict of tensors)");
    }
    const std::vector<Value>& items = pickle.container(root).items;
    std::vector<CheckpointTensor> tensors;
    for (size_t i = 0; i < items.size(); i += 2) {
        const std::string& name = pickle.string(items[i]);
        if (items[i + 1].kind != Kind::Tensor) {
            fail(label,
                 "entry " + inQuotes(name) + " of the state dict holds " + pickle.describe(items[i + 1]) +
                     ", not a tensor (only a state dict of tensors can be read: save model.state_dict())");
        }
        tensors.push_back(checkTensor(pickle, name, pickle.tensor(items[i + 1]), records, label));
    }
    return tensors;
}

std::vector<CheckpointTensor> parseCheckpoint(const ByteSource& source) {
    const std::string& label = source.label();
    checkIsZip(source);
    const Archive archive = readArchive(source);
    checkMarkers(source, archive);
    const std::string where = archive.top + "/data.pkl";
    if (!findRecord(archive, "data.pkl")) {
        fail(label, "the archive has no entry " + inQuotes(where) + "; it is not a torch.save checkpoint");
    }
    const std::string pickle = readRecord(source, archive, "data.pkl", kMaxPickleSize);
    Unpickler unpickler(pickle, label, where);
    const Value root = unpickler.run();
    const StorageRecords records{archive.top + "/data/", [&archive](const std::string& key, uint64_t) {
                                     const Record* record = findRecord(archive, "data/" + key);
                                     return record ? std::optional<Record>(*record) : std::nullopt;
                                 }};
    return stateDictTensors(unpickler, root, records, label);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

PytorchCheckpoint PytorchCheckpoint::open(const std::filesystem::path& file) {
    PytorchCheckpoint checkpoint;
    checkpoint.file_ = file;
    const std::string label = file.string();
    checkpoint.fd_ = ::open(label.c_str(), O_RDONLY | O_CLOEXEC);
    if (checkpoint.fd_ < 0) fail(label, std::string("cannot open: ") + std::strerror(errno));
    struct stat info {};
    if (::fstat(checkpoint.fd_, &info) != 0) fail(label, std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(info.st_mode)) fail(label, "not a regular file");
    checkpoint.file_size_ = static_cast<uint64_t>(info.st_size);
    checkpoint.tensors_ = parseCheckpoint(FileSource(checkpoint.fd_, checkpoint.file_size_, label));
    for (size_t i = 0; i < checkpoint.tensors_.size(); ++i)
        checkpoint.index_.emplace(checkpoint.tensors_[i].name, i);
    return checkpoint;
}

PytorchCheckpoint::PytorchCheckpoint(PytorchCheckpoint&& other) noexcept
    : file_(std::move(other.file_)),
      fd_(std::exchange(other.fd_, -1)),
      file_size_(other.file_size_),
      tensors_(std::move(other.tensors_)),
      index_(std::move(other.index_)) {}

PytorchCheckpoint& PytorchCheckpoint::operator=(PytorchCheckpoint&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        file_ = std::move(other.file_);
        fd_ = std::exchange(other.fd_, -1);
        file_size_ = other.file_size_;
        tensors_ = std::move(other.tensors_);
        index_ = std::move(other.index_);
    }
    return *this;
}

PytorchCheckpoint::~PytorchCheckpoint() {
    if (fd_ >= 0) ::close(fd_);
}

const CheckpointTensor* PytorchCheckpoint::find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

void PytorchCheckpoint::read(const CheckpointTensor& tensor, void* out) const {
    read(tensor, 0, tensor.byte_size, out);
}

void PytorchCheckpoint::read(const CheckpointTensor& tensor, uint64_t byte_offset, uint64_t size,
                             void* out) const {
    const std::string label = file_.string();
    const std::string what = "tensor " + inQuotes(tensor.name);
    if (byte_offset > tensor.byte_size || size > tensor.byte_size - byte_offset) {
        fail(label, what + ": bytes [" + num(byte_offset) + ", +" + num(size) + ") lie outside its " +
                        num(tensor.byte_size) + " bytes");
    }
    uint64_t first = 0;
    if (__builtin_add_overflow(tensor.file_offset, byte_offset, &first) || first > file_size_ ||
        size > file_size_ - first) {
        fail(label, what + ": its bytes lie past the end of the file of " + num(file_size_) + " bytes");
    }
    preadFully(fd_, static_cast<char*>(out), size, first, label, what);
}

std::vector<CheckpointTensor> parsePytorchCheckpoint(std::string_view file_bytes, const std::string& label) {
    return parseCheckpoint(MemorySource(file_bytes, label));
}

void checkPickleForFuzzing(const uint8_t* data, size_t size) {
    const std::string label = "fuzz";
    const std::string where = "data.pkl";
    if (size > kMaxPickleSize) fail(label, "the pickle is too large");
    const std::string_view pickle(reinterpret_cast<const char*>(data), size);
    Unpickler unpickler(pickle, label, where);
    const Value root = unpickler.run();
    const StorageRecords records{"data/", [](const std::string&, uint64_t claimed) {
                                     return Record{0, claimed, 0};
                                 }};
    stateDictTensors(unpickler, root, records, label);
}

// ---------------------------------------------------------------------------------------------------------
// The writer.

namespace {

void put16(std::string& out, uint64_t value) {
    for (int i = 0; i < 2; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

void put32(std::string& out, uint64_t value) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

void put64(std::string& out, uint64_t value) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

// Emits opcodes the way Python's pickler does at protocol 2, memo included, so that the files look like
// torch's own to any reader.
class PickleWriter {
public:
    PickleWriter() { out_ += "\x80\x02"; }

    std::string finish() { return std::move(out_) + "."; }
    void op(char code) { out_ += code; }

    void memoize() {
        if (next_ < 256) {
            out_ += 'q';
            out_ += static_cast<char>(next_);
        } else {
            out_ += 'r';
            put32(out_, next_);
        }
        ++next_;
    }

    // Classes and interned literals are pickled once and fetched from the memo afterwards.
    void global(const std::string& module, const std::string& name) {
        if (reuse("c" + module + "." + name)) return;
        out_ += "c" + module + "\n" + name + "\n";
        remember("c" + module + "." + name);
    }

    void internedString(const std::string& text) {
        if (reuse("s" + text)) return;
        string(text);
        shared_["s" + text] = next_ - 1;
    }

    void string(std::string_view text) {
        out_ += 'X';
        put32(out_, text.size());
        out_ += text;
        memoize();
    }

    void integer(int64_t value) {
        if (value >= 0 && value <= 0xff) {
            out_ += 'K';
            out_ += static_cast<char>(value);
        } else if (value >= 0 && value <= 0xffff) {
            out_ += 'M';
            put16(out_, static_cast<uint64_t>(value));
        } else if (value >= INT32_MIN && value <= INT32_MAX) {
            out_ += 'J';
            put32(out_, static_cast<uint64_t>(value));
        } else {
            long1(value);
        }
    }

    void intTuple(const std::vector<int64_t>& values) {
        if (values.empty()) return op(')');
        if (values.size() > 3) op('(');
        for (int64_t value : values) integer(value);
        op(values.size() > 3 ? 't' : static_cast<char>(0x84 + values.size()));
        memoize();
    }

private:
    // The shortest two's complement form, as Python's encode_long writes it.
    void long1(int64_t value) {
        std::string bytes;
        auto bits = static_cast<uint64_t>(value);
        for (int i = 0; i < 8; ++i) bytes += static_cast<char>((bits >> (8 * i)) & 0xff);
        while (bytes.size() > 1) {
            const auto last = static_cast<unsigned char>(bytes.back());
            const auto before = static_cast<unsigned char>(bytes[bytes.size() - 2]);
            if (!((last == 0 && !(before & 0x80)) || (last == 0xff && (before & 0x80)))) break;
            bytes.pop_back();
        }
        out_ += '\x8a';
        out_ += static_cast<char>(bytes.size());
        out_ += bytes;
    }

    bool reuse(const std::string& key) {
        const auto it = shared_.find(key);
        if (it == shared_.end()) return false;
        if (it->second < 256) {
            out_ += 'h';
            out_ += static_cast<char>(it->second);
        } else {
            out_ += 'j';
            put32(out_, it->second);
        }
        return true;
    }

    void remember(const std::string& key) {
        shared_[key] = next_;
        memoize();
    }

    std::string out_;
    uint32_t next_ = 0;
    std::map<std::string, uint32_t> shared_;
};

const char* storageClass(DType dtype) {
    switch (dtype) {
        case DType::F16:
            return "HalfStorage";
        case DType::BF16:
            return "BFloat16Storage";
        default:
            return "FloatStorage";
    }
}

struct SavePlan {
    uint64_t numel = 0;
    uint64_t bytes = 0;
    std::vector<int64_t> strides;
};

// torch's contiguous strides, which treat zero-size dimensions as 1 so that empty tensors get strides too.
SavePlan planTensor(const TensorToSave& tensor, const std::string& label) {
    const std::string name = "tensor " + inQuotes(tensor.name);
    if (!isStorableDType(tensor.dtype)) {
        fail(label, name + ": dtype " + std::string(dtypeName(tensor.dtype)) +
                        " cannot be saved (F32, F16 and BF16 only)");
    }
    if (!validUtf8(tensor.name)) fail(label, name + ": the name is not valid UTF-8");
    if (tensor.shape.size() > kMaxDims) fail(label, name + ": more than " + num(kMaxDims) + " dimensions");
    SavePlan plan;
    plan.strides.assign(tensor.shape.size(), 1);
    uint64_t stride = 1;
    bool empty = false;
    for (size_t i = tensor.shape.size(); i-- > 0;) {
        if (tensor.shape[i] < 0) fail(label, name + ": a negative size");
        plan.strides[i] = static_cast<int64_t>(stride);
        empty = empty || tensor.shape[i] == 0;
        const uint64_t dim = std::max<uint64_t>(static_cast<uint64_t>(tensor.shape[i]), 1);
        if (__builtin_mul_overflow(stride, dim, &stride) || stride > uint64_t{INT64_MAX}) {
            fail(label, name + ": its shape overflows 64 bits");
        }
    }
    plan.numel = empty ? 0 : stride;
    if (__builtin_mul_overflow(plan.numel, dtypeSize(tensor.dtype), &plan.bytes)) {
        fail(label, name + ": its size overflows 64 bits");
    }
    if (plan.bytes > 0 && !tensor.data) fail(label, name + ": no data was given");
    return plan;
}

void pickleTensor(PickleWriter& p, const TensorToSave& tensor, const SavePlan& plan, size_t key) {
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(');
    p.internedString("storage");
    p.global("torch", storageClass(tensor.dtype));
    p.string(std::to_string(key));
    p.internedString("cpu");
    p.integer(static_cast<int64_t>(plan.numel));
    p.op('t');
    p.memoize();
    p.op('Q');
    p.integer(0);
    p.intTuple(tensor.shape);
    p.intTuple(plan.strides);
    p.op('\x89');
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.memoize();
    p.op('t');
    p.memoize();
    p.op('R');
    p.memoize();
}

// Python's pickler writes dict items in batches of 1000, a lone item with SETITEM.
std::string pickleStateDict(const std::vector<TensorToSave>& tensors, const std::vector<SavePlan>& plans) {
    constexpr size_t kBatch = 1000;
    PickleWriter p;
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.memoize();
    for (size_t begin = 0; begin < tensors.size(); begin += kBatch) {
        const size_t end = std::min(tensors.size(), begin + kBatch);
        if (end - begin > 1) p.op('(');
        for (size_t i = begin; i < end; ++i) {
            p.string(tensors[i].name);
            pickleTensor(p, tensors[i], plans[i], i);
        }
        p.op(end - begin > 1 ? 'u' : 's');
    }
    return p.finish();
}

struct ZipRecord {
    std::string name;
    const char* data = nullptr;
    uint64_t size = 0;
    uint32_t crc = 0;
    uint64_t offset = 0;  // of the local header
    std::string local_header;
};

ZipRecord zipRecord(std::string name, const char* data, uint64_t size) {
    ZipRecord record;
    record.name = std::move(name);
    record.data = data;
    record.size = size;
    return record;
}

std::string localHeader(const ZipRecord& record, bool force_zip64) {
    const bool zip64 = force_zip64 || record.size >= kSaturated32;
    std::string extra;
    if (zip64) {
        put16(extra, kZip64ExtraId);
        put16(extra, 16);
        put64(extra, record.size);
        put64(extra, record.size);
    }
    // torch aligns every record's data to 64 bytes (so it can be mapped) with a padding field.
    const uint64_t unpadded = record.offset + kLocalHeaderSize + record.name.size() + extra.size() + 4;
    const uint64_t padding = (kRecordAlignment - unpadded % kRecordAlignment) % kRecordAlignment;
    put16(extra, kPaddingExtraId);
    put16(extra, padding);
    extra.append(padding, 'Z');
    std::string header;
    put32(header, kLocalHeaderSignature);
    put16(header, zip64 ? 45 : 20);
    put16(header, 0);  // flags
    put16(header, 0);  // stored
    put16(header, 0);  // time
    put16(header, kDosDate1980);
    put32(header, record.crc);
    put32(header, zip64 ? kSaturated32 : record.size);
    put32(header, zip64 ? kSaturated32 : record.size);
    put16(header, record.name.size());
    put16(header, extra.size());
    return header + record.name + extra;
}

std::string centralEntry(const ZipRecord& record, bool force_zip64) {
    const bool wide_size = force_zip64 || record.size >= kSaturated32;
    const bool wide_offset = force_zip64 || record.offset >= kSaturated32;
    std::string extra;
    if (wide_size || wide_offset) {
        put16(extra, kZip64ExtraId);
        put16(extra, (wide_size ? 16 : 0) + (wide_offset ? 8 : 0));
        if (wide_size) {
            put64(extra, record.size);
            put64(extra, record.size);
        }
        if (wide_offset) put64(extra, record.offset);
    }
    std::string entry;
    put32(entry, kCentralHeaderSignature);
    put16(entry, 45);  // made by
    put16(entry, extra.empty() ? 20 : 45);
    put16(entry, 0);  // flags
    put16(entry, 0);  // stored
    put16(entry, 0);  // time
    put16(entry, kDosDate1980);
    put32(entry, record.crc);
    put32(entry, wide_size ? kSaturated32 : record.size);
    put32(entry, wide_size ? kSaturated32 : record.size);
    put16(entry, record.name.size());
    put16(entry, extra.size());
    put16(entry, 0);  // comment
    put16(entry, 0);  // disk
    put16(entry, 0);  // internal attributes
    put32(entry, 0);  // external attributes
    put32(entry, wide_offset ? kSaturated32 : record.offset);
    return entry + record.name + extra;
}

std::string endRecords(uint64_t entries, uint64_t offset, uint64_t size, bool force_zip64) {
    const bool zip64 =
        force_zip64 || entries >= kSaturated16 || offset >= kSaturated32 || size >= kSaturated32;
    std::string out;
    if (zip64) {
        put32(out, kZip64EndSignature);
        put64(out, kZip64EndSize - 12);
        put16(out, 45);
        put16(out, 45);
        put32(out, 0);
        put32(out, 0);
        put64(out, entries);
        put64(out, entries);
        put64(out, size);
        put64(out, offset);
        put32(out, kZip64LocatorSignature);
        put32(out, 0);
        put64(out, offset + size);
        put32(out, 1);
    }
    put32(out, kEndSignature);
    put32(out, 0);  // disks
    put16(out, zip64 ? kSaturated16 : entries);
    put16(out, zip64 ? kSaturated16 : entries);
    put32(out, zip64 ? kSaturated32 : size);
    put32(out, zip64 ? kSaturated32 : offset);
    put16(out, 0);  // comment
    return out;
}

void layOut(std::vector<ZipRecord>& records, bool force_zip64) {
    uint64_t offset = 0;
    for (ZipRecord& record : records) {
        record.crc = crc32(record.data, record.size);
        record.offset = offset;
        record.local_header = localHeader(record, force_zip64);
        offset += record.local_header.size() + record.size;
    }
}

}  // namespace

void writePytorchCheckpoint(const std::filesystem::path& file, const std::vector<TensorToSave>& tensors,
                            const CheckpointWriteOptions& options) {
    const std::string label = file.string();
    std::vector<SavePlan> plans;
    std::set<std::string_view> names;
    for (const TensorToSave& tensor : tensors) {
        plans.push_back(planTensor(tensor, label));
        if (!names.insert(tensor.name).second)
            fail(label, "tensor " + inQuotes(tensor.name) + " appears twice");
    }
    const std::string pickle = pickleStateDict(tensors, plans);
    static const std::string kByteOrder = "little";
    static const std::string kVersion = "3\n";
    std::vector<ZipRecord> records;
    records.push_back(zipRecord("archive/data.pkl", pickle.data(), pickle.size()));
    records.push_back(zipRecord("archive/byteorder", kByteOrder.data(), kByteOrder.size()));
    for (size_t i = 0; i < tensors.size(); ++i) {
        records.push_back(zipRecord("archive/data/" + std::to_string(i),
                                    static_cast<const char*>(tensors[i].data), plans[i].bytes));
    }
    records.push_back(zipRecord("archive/version", kVersion.data(), kVersion.size()));
    layOut(records, options.force_zip64);

    std::string directory;
    for (const ZipRecord& record : records) directory += centralEntry(record, options.force_zip64);
    const uint64_t directory_offset =
        records.back().offset + records.back().local_header.size() + records.back().size;
    const std::string end =
        endRecords(records.size(), directory_offset, directory.size(), options.force_zip64);
    writeFileAtomically(file, [&](std::ostream& out) {
        for (const ZipRecord& record : records) {
            out.write(record.local_header.data(), static_cast<std::streamsize>(record.local_header.size()));
            if (record.size > 0) out.write(record.data, static_cast<std::streamsize>(record.size));
        }
        out.write(directory.data(), static_cast<std::streamsize>(directory.size()));
        out.write(end.data(), static_cast<std::streamsize>(end.size()));
    });
}

}  // namespace phatgoose
