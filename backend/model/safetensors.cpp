#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <ostream>
#include <set>

#include <nlohmann/json.hpp>

#include "atomic_file.h"
#include "error.h"

namespace phatgoose {

namespace {

using nlohmann::json;

constexpr uint64_t kLengthFieldSize = 8;
// The reference implementation's cap: a real header is kilobytes, so anything near this is an attack or
// garbage, and refusing it bounds the memory the JSON parser may take.
constexpr uint64_t kMaxHeaderLength = 100'000'000;
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr const char* kMetadataKey = "__metadata__";

[[noreturn]] void fail(const std::string& label, const std::string& problem) {
    throw Error(label + ": " + problem);
}

[[noreturn]] void failTensor(const std::string& label, const std::string& name, const std::string& problem) {
    fail(label, "tensor '" + printableText(name) + "': " + problem);
}

std::string shapeText(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

std::string rangeText(uint64_t begin, uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

std::optional<DType> dtypeFromName(std::string_view name) {
    for (DType dtype : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16,
                        DType::I8, DType::U8, DType::Bool}) {
        if (dtypeName(dtype) == name) return dtype;
    }
    return std::nullopt;
}

uint64_t readLittleEndian64(std::string_view bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

// Zero dimensions make the element count zero, but the other dimensions must still multiply without
// overflow so that strides computed from the shape stay representable.
std::optional<uint64_t> elementCount(const std::vector<int64_t>& shape) {
    uint64_t product = 1;
    bool has_zero = false;
    for (int64_t dim : shape) {
        if (dim < 0) return std::nullopt;
        if (dim == 0) {
            has_zero = true;
            continue;
        }
        if (__builtin_mul_overflow(product, static_cast<uint64_t>(dim), &product) || product > kMaxInt64) {
            return std::nullopt;
        }
    }
    return has_zero ? 0 : product;
}

std::optional<uint64_t> byteCount(const std::vector<int64_t>& shape, DType dtype) {
    const std::optional<uint64_t> count = elementCount(shape);
    uint64_t bytes = 0;
    if (!count || __builtin_mul_overflow(*count, dtypeSize(dtype), &bytes)) return std::nullopt;
    return bytes;
}

std::optional<uint64_t> nonNegativeInteger(const json& value) {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer() && value.get<int64_t>() >= 0) {
        return static_cast<uint64_t>(value.get<int64_t>());
    }
    return std::nullopt;
}

// Length of the JSON header, after checking it lies within the file and within `prefix`.
uint64_t headerLength(std::string_view prefix, uint64_t file_size, const std::string& label) {
    if (file_size < kLengthFieldSize) {
        fail(label,
             "the file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
    }
    if (prefix.size() < kLengthFieldSize) fail(label, "the 8-byte header length was not read");
    const uint64_t length = readLittleEndian64(prefix);
    if (length > kMaxHeaderLength) {
        fail(label, "header length " + std::to_string(length) + " exceeds the limit of " +
                        std::to_string(kMaxHeaderLength) + " bytes");
    }
    if (length > file_size - kLengthFieldSize) {
        fail(label, "header length " + std::to_string(length) + " exceeds the file size " +
                        std::to_string(file_size));
    }
    if (length > prefix.size() - kLengthFieldSize) {
        fail(label, "only " + std::to_string(prefix.size() - kLengthFieldSize) + " of the " +
                        std::to_string(length) + " header bytes were read");
    }
    return length;
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the user needs only the rest.
std::string jsonProblem(const char* what) {
    std::string_view text = what;
    const size_t tag_end = text.find("] ");
    if (!text.empty() && text.front() == '[' && tag_end != std::string_view::npos) {
        text.remove_prefix(tag_end + 2);
    }
    return printableText(text, 300);
}

// A first pass over the header that builds nothing. nlohmann::json keeps the last of duplicate keys,
// which would let two readers of one file disagree about a tensor, so duplicates are refused here; depth
// is bounded before a hostile header can make the DOM parser build a deep tree. (nlohmann's callback
// parser could do this in one pass, but it rescans the parent object after every child object: quadratic
// in the number of tensors.)
class HeaderSyntaxCheck : public nlohmann::json_sax<json> {
public:
    const std::string& problem() const { return problem_; }

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(size_t) override {
        keys_.emplace_back();
        return enter();
    }
    bool key(string_t& key) override {
        if (keys_.back().insert(key).second) return true;
        problem_ = "the header repeats the key '" + printableText(key) + "'";
        return false;
    }
    bool end_object() override {
        keys_.pop_back();
        --depth_;
        return true;
    }
    bool start_array(size_t) override { return enter(); }
    bool end_array() override {
        --depth_;
        return true;
    }
    bool parse_error(size_t, const std::string&, const json::exception& error) override {
        problem_ = "header is not valid JSON (" + jsonProblem(error.what()) + ")";
        return false;
    }

private:
    // A header is an object of objects of arrays of numbers: three levels of containers.
    bool enter() {
        if (++depth_ <= 3) return true;
        problem_ = "the header nests deeper than a safetensors header";
        return false;
    }

    int depth_ = 0;
    std::vector<std::set<std::string>> keys_;
    std::string problem_;
};

json parseHeaderJson(std::string_view text, const std::string& label) {
    // nlohmann stops at a NUL byte as at the end of input and would ignore whatever follows it; JSON
    // allows no raw NUL anywhere, so one means the header is not what other readers will see.
    const size_t nul = text.find('\0');
    if (nul != std::string_view::npos) {
        fail(label, "header is not valid JSON (a NUL byte at offset " + std::to_string(nul) + ")");
    }
    HeaderSyntaxCheck check;
    if (!json::sax_parse(text.begin(), text.end(), &check)) fail(label, check.problem());
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        fail(label, "header is not valid JSON (" + jsonProblem(e.what()) + ")");
    }
}

const json& requiredField(const json& entry, const char* field, const std::string& name,
                          const std::string& label) {
    const auto it = entry.find(field);
    if (it == entry.end()) failTensor(label, name, std::string("missing '") + field + "'");
    return *it;
}

DType parseDType(const json& value, const std::string& name, const std::string& label) {
    if (!value.is_string()) failTensor(label, name, "'dtype' is not a string");
    const auto& text = value.get_ref<const std::string&>();
    const std::optional<DType> dtype = dtypeFromName(text);
    if (!dtype) failTensor(label, name, "unknown dtype '" + printableText(text) + "'");
    return *dtype;
}

std::vector<int64_t> parseShape(const json& value, const std::string& name, const std::string& label) {
    if (!value.is_array()) failTensor(label, name, "'shape' is not an array");
    std::vector<int64_t> shape;
    for (const json& dim : value) {
        const std::optional<uint64_t> size = nonNegativeInteger(dim);
        if (!size || *size > kMaxInt64) {
            failTensor(label, name,
                       "shape entry " + printableText(dim.dump()) + " is not a non-negative integer");
        }
        shape.push_back(static_cast<int64_t>(*size));
    }
    return shape;
}

void parseDataOffsets(const json& value, TensorInfo& tensor, const std::string& label) {
    std::optional<uint64_t> begin, end;
    if (value.is_array() && value.size() == 2) {
        begin = nonNegativeInteger(value[0]);
        end = nonNegativeInteger(value[1]);
    }
    if (!begin || !end) failTensor(label, tensor.name, "'data_offsets' is not two non-negative integers");
    if (*begin > *end)
        failTensor(label, tensor.name, "data_offsets " + rangeText(*begin, *end) + " run backwards");
    tensor.begin = *begin;
    tensor.end = *end;
}

void checkFieldNames(const json& entry, const std::string& name, const std::string& label) {
    for (const auto& item : entry.items()) {
        const std::string& key = item.key();
        if (key != "dtype" && key != "shape" && key != "data_offsets") {
            failTensor(label, name, "unexpected field '" + printableText(key) + "'");
        }
    }
}

void checkExtent(const TensorInfo& tensor, uint64_t data_size, const std::string& label) {
    const std::optional<uint64_t> needed = byteCount(tensor.shape, tensor.dtype);
    if (!needed) {
        failTensor(label, tensor.name,
                   "shape " + shapeText(tensor.shape) + " of " + std::string(dtypeName(tensor.dtype)) +
                       " overflows 64-bit sizes");
    }
    if (tensor.end > data_size) {
        failTensor(label, tensor.name,
                   "data_offsets " + rangeText(tensor.begin, tensor.end) +
                       " end beyond the data section of " + std::to_string(data_size) +
                       " bytes (is the file truncated?)");
    }
    if (tensor.end - tensor.begin != *needed) {
        failTensor(label, tensor.name,
                   "data_offsets " + rangeText(tensor.begin, tensor.end) + " hold " +
                       std::to_string(tensor.end - tensor.begin) + " bytes but shape " +
                       shapeText(tensor.shape) + " of " + std::string(dtypeName(tensor.dtype)) + " needs " +
                       std::to_string(*needed));
    }
}

TensorInfo parseTensor(const std::string& name, const json& entry, uint64_t data_size,
                       const std::string& label) {
    if (!entry.is_object()) failTensor(label, name, "the entry is not a JSON object");
    checkFieldNames(entry, name, label);
    TensorInfo tensor;
    tensor.name = name;
    tensor.dtype = parseDType(requiredField(entry, "dtype", name, label), name, label);
    tensor.shape = parseShape(requiredField(entry, "shape", name, label), name, label);
    parseDataOffsets(requiredField(entry, "data_offsets", name, label), tensor, label);
    checkExtent(tensor, data_size, label);
    return tensor;
}

std::map<std::string, std::string> parseMetadata(const json& value, const std::string& label) {
    if (!value.is_object()) fail(label, "'__metadata__' is not a JSON object");
    std::map<std::string, std::string> metadata;
    for (const auto& item : value.items()) {
        if (!item.value().is_string()) {
            fail(label, "metadata value for '" + printableText(item.key()) + "' is not a string");
        }
        metadata.emplace(item.key(), item.value().get<std::string>());
    }
    return metadata;
}

// Gaps between tensors are legal; shared bytes are not. Empty tensors occupy no bytes, so they overlap
// nothing wherever their offsets point.
void checkNoOverlaps(const std::vector<TensorInfo>& tensors, const std::string& label) {
    std::vector<const TensorInfo*> by_offset;
    for (const TensorInfo& tensor : tensors) {
        if (tensor.begin != tensor.end) by_offset.push_back(&tensor);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    const TensorInfo* furthest = nullptr;
    for (const TensorInfo* tensor : by_offset) {
        if (furthest && tensor->begin < furthest->end) {
            fail(label, "tensors '" + printableText(furthest->name) + "' " +
                            rangeText(furthest->begin, furthest->end) + " and '" +
                            printableText(tensor->name) + "' " + rangeText(tensor->begin, tensor->end) +
                            " overlap");
        }
        if (!furthest || tensor->end > furthest->end) furthest = tensor;
    }
}

std::string errnoText() {
    return std::strerror(errno);
}

// pread until `size` bytes arrived: regular files may still return short counts (signals, huge sizes).
void preadFully(int fd, void* dst, uint64_t size, uint64_t offset, const std::string& label,
                const std::string& what) {
    auto* out = static_cast<char*>(dst);
    constexpr uint64_t kMaxChunk = 1u << 30;
    while (size > 0) {
        const ssize_t got = ::pread(fd, out, std::min(size, kMaxChunk), static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(label, "cannot read " + what + ": " + errnoText());
        if (got == 0) fail(label, "the file ended while reading " + what + " (was it truncated?)");
        out += got;
        size -= static_cast<uint64_t>(got);
        offset += static_cast<uint64_t>(got);
    }
}

void appendLittleEndian64(std::string& out, uint64_t value) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

json tensorEntry(const TensorToWrite& tensor, uint64_t begin, uint64_t end) {
    json entry = json::object();
    entry["dtype"] = std::string(dtypeName(tensor.dtype));
    entry["shape"] = tensor.shape;
    entry["data_offsets"] = {begin, end};
    return entry;
}

// The JSON header for `tensors` laid out back to back in order, padded with spaces to a multiple of 8
// bytes (as the reference writer does, so the data section starts aligned), with its length prefix.
std::string encodeHeader(const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata, const std::string& label) {
    json header = json::object();
    uint64_t offset = 0;
    for (const TensorToWrite& tensor : tensors) {
        if (tensor.name == kMetadataKey) failTensor(label, tensor.name, "the name is reserved for metadata");
        if (header.contains(tensor.name)) failTensor(label, tensor.name, "the name appears twice");
        const std::optional<uint64_t> bytes = byteCount(tensor.shape, tensor.dtype);
        if (!bytes)
            failTensor(label, tensor.name, "shape " + shapeText(tensor.shape) + " is invalid or overflows");
        if (*bytes > 0 && !tensor.data) failTensor(label, tensor.name, "no data was given");
        if (__builtin_add_overflow(offset, *bytes, &offset))
            failTensor(label, tensor.name, "the file would overflow");
        header[tensor.name] = tensorEntry(tensor, offset - *bytes, offset);
    }
    if (!metadata.empty()) header[kMetadataKey] = metadata;
    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception&) {
        fail(label, "a tensor name or metadata string is not valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    if (text.size() > kMaxHeaderLength) fail(label, "the header would exceed the readable limit");
    std::string encoded;
    appendLittleEndian64(encoded, text.size());
    return encoded + text;
}

}  // namespace

std::string_view dtypeName(DType dtype) {
    switch (dtype) {
        case DType::F64:
            return "F64";
        case DType::F32:
            return "F32";
        case DType::F16:
            return "F16";
        case DType::BF16:
            return "BF16";
        case DType::I64:
            return "I64";
        case DType::I32:
            return "I32";
        case DType::I16:
            return "I16";
        case DType::I8:
            return "I8";
        case DType::U8:
            return "U8";
        case DType::Bool:
            return "BOOL";
    }
    return "?";
}

size_t dtypeSize(DType dtype) {
    switch (dtype) {
        case DType::F64:
        case DType::I64:
            return 8;
        case DType::F32:
        case DType::I32:
            return 4;
        case DType::F16:
        case DType::BF16:
        case DType::I16:
            return 2;
        case DType::I8:
        case DType::U8:
        case DType::Bool:
            return 1;
    }
    return 0;
}

// Unsigned arithmetic so that a shape which was never validated wraps instead of invoking undefined
// behaviour; shapes from parseSafetensorsHeader never overflow.
int64_t TensorInfo::numel() const {
    uint64_t product = 1;
    for (int64_t dim : shape) product *= static_cast<uint64_t>(dim);
    return static_cast<int64_t>(product);
}

const TensorInfo* SafetensorsHeader::find(const std::string& name) const {
    const auto it =
        std::lower_bound(tensors.begin(), tensors.end(), name,
                         [](const TensorInfo& tensor, const std::string& key) { return tensor.name < key; });
    return it != tensors.end() && it->name == name ? &*it : nullptr;
}

SafetensorsHeader parseSafetensorsHeader(std::string_view prefix, uint64_t file_size,
                                         const std::string& file_label) {
    const uint64_t length = headerLength(prefix, file_size, file_label);
    const json root = parseHeaderJson(prefix.substr(kLengthFieldSize, length), file_label);
    if (!root.is_object()) fail(file_label, "the header is not a JSON object");

    SafetensorsHeader header;
    header.data_offset = kLengthFieldSize + length;
    const uint64_t data_size = file_size - header.data_offset;
    for (const auto& item : root.items()) {
        if (item.key() == kMetadataKey) {
            header.metadata = parseMetadata(item.value(), file_label);
        } else {
            header.tensors.push_back(parseTensor(item.key(), item.value(), data_size, file_label));
        }
    }
    std::sort(header.tensors.begin(), header.tensors.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
    checkNoOverlaps(header.tensors, file_label);
    return header;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
    const std::string label = path.string();
    fd_ = ::open(label.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(label, "cannot open: " + errnoText());
    try {
        struct stat info {};
        if (::fstat(fd_, &info) != 0) fail(label, "cannot stat: " + errnoText());
        if (!S_ISREG(info.st_mode)) fail(label, "not a regular file");
        const auto file_size = static_cast<uint64_t>(info.st_size);
        file_size_ = file_size;

        std::string prefix(std::min(file_size, kLengthFieldSize), '\0');
        preadFully(fd_, prefix.data(), prefix.size(), 0, label, "the header length");
        if (prefix.size() == kLengthFieldSize) {
            // Only read as much as the parser will accept; it reports the lengths it refuses.
            const uint64_t length = readLittleEndian64(prefix);
            if (length <= kMaxHeaderLength && length <= file_size - kLengthFieldSize) {
                prefix.resize(kLengthFieldSize + length);
                preadFully(fd_, prefix.data() + kLengthFieldSize, length, kLengthFieldSize, label,
                           "the header");
            }
        }
        header_ = parseSafetensorsHeader(prefix, file_size, label);
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) ::munmap(map_, file_size_);
    if (fd_ >= 0) ::close(fd_);
}

void SafetensorsFile::releasePages() const {
    std::lock_guard<std::mutex> lock(map_mutex_);
    if (map_) ::madvise(map_, file_size_, MADV_DONTNEED);
}

void* SafetensorsFile::mapped(const TensorInfo& tensor) const {
    const uint64_t first = header_.data_offset + tensor.begin;  // checked by the parser: inside the file
    if (first % dtypeSize(tensor.dtype) != 0) return nullptr;
    std::lock_guard<std::mutex> lock(map_mutex_);
    if (!map_) {
        void* p = ::mmap(nullptr, file_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd_, 0);
        if (p == MAP_FAILED) fail(path_.string(), "cannot map into memory: " + errnoText());
        map_ = p;
    }
    return static_cast<char*>(map_) + first;
}

void SafetensorsFile::read(const TensorInfo& tensor, void* dst) const {
    const std::string label = path_.string();
    uint64_t first = 0;
    uint64_t last = 0;
    if (tensor.begin > tensor.end || __builtin_add_overflow(header_.data_offset, tensor.begin, &first) ||
        __builtin_add_overflow(header_.data_offset, tensor.end, &last)) {
        failTensor(label, tensor.name, "invalid data_offsets " + rangeText(tensor.begin, tensor.end));
    }
    preadFully(fd_, dst, last - first, first, label, "tensor '" + printableText(tensor.name) + "'");
}

namespace {

// The header is encoded (and every tensor checked) before the caller opens a file.
std::function<void(std::ostream&)> safetensorsWriter(const std::filesystem::path& path,
                                                     const std::vector<TensorToWrite>& tensors,
                                                     const std::map<std::string, std::string>& metadata) {
    auto header = std::make_shared<std::string>(encodeHeader(tensors, metadata, path.string()));
    return [header, &tensors](std::ostream& out) {
        out.write(header->data(), static_cast<std::streamsize>(header->size()));
        for (const TensorToWrite& tensor : tensors) {
            const uint64_t bytes = *byteCount(tensor.shape, tensor.dtype);
            if (bytes > 0)
                out.write(static_cast<const char*>(tensor.data), static_cast<std::streamsize>(bytes));
        }
    };
}

}  // namespace

void writeSafetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    writeFileAtomically(path, safetensorsWriter(path, tensors, metadata));
}

void writeSafetensors(FileTransaction& files, const std::filesystem::path& path,
                      const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    files.write(path, safetensorsWriter(path, tensors, metadata));
}

// Messages must stay one printable line whatever bytes a broken file holds.
std::string printableText(std::string_view text, size_t limit) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (out.size() >= limit) {
            out += "...";
            break;
        }
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte >= 0x20 && byte < 0x7f) {
            out += static_cast<char>(byte);
        } else {
            static const char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        }
    }
    return out;
}

}  // namespace phatgoose
