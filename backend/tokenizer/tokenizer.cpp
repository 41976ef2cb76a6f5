#include "tokenizer/tokenizer.h"

#include <dlfcn.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "atomic_file.h"
#include "error.h"
#include "tokenizer/spm_shim.h"

namespace fs = std::filesystem;

namespace phatgoose {

namespace {

template <typename T>
using ShimOwned = std::unique_ptr<T, void (*)(void*)>;

constexpr std::string_view kSentinelPrefix = "<extra_id_";

// Where the shim may live, best first; see SpmShim::open.
std::vector<fs::path> shimCandidates() {
    std::vector<fs::path> candidates;
    const char* override_path = std::getenv("PHATGOOSE_SPM_SHIM");
    if (override_path != nullptr && *override_path != '\0') candidates.emplace_back(override_path);
    std::error_code ec;
    const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    if (ec) return candidates;
    // The build tree always uses lib/phatgoose; an install under /usr on Debian uses the multiarch
    // CMAKE_INSTALL_LIBDIR (lib/x86_64-linux-gnu/phatgoose). Both sit beside bin/.
    for (const fs::path& libdir : {fs::path("lib/phatgoose"), fs::path(PHATGOOSE_PRIVATE_LIBDIR)}) {
        const fs::path candidate = (exe_dir / ".." / libdir / PHATGOOSE_SPM_SHIM_NAME).lexically_normal();
        if (candidates.empty() || candidates.back() != candidate) candidates.push_back(candidate);
    }
    candidates.push_back(exe_dir / PHATGOOSE_SPM_SHIM_NAME);
    return candidates;
}

std::string dlMessage() {
    const char* message = dlerror();
    return message != nullptr ? message : "no reason given";
}

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trimRight(std::string_view text) {
    while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
    return text;
}

std::string_view trimLeft(std::string_view text) {
    while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
    return text;
}

// Reads N from "<extra_id_N>" at the start of `text`; -1 when it is not exactly that form (no sign, no
// leading zeros, as Hugging Face matches the literal token strings). `length` receives the token's size.
int64_t parseSentinel(std::string_view text, size_t* length) {
    if (text.substr(0, kSentinelPrefix.size()) != kSentinelPrefix) return -1;
    size_t end = kSentinelPrefix.size();
    int64_t n = 0;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9' && end - kSentinelPrefix.size() < 9) {
        n = n * 10 + (text[end] - '0');
        ++end;
    }
    const size_t digits = end - kSentinelPrefix.size();
    if (digits == 0 || end >= text.size() || text[end] != '>') return -1;
    if (digits > 1 && text[kSentinelPrefix.size()] == '0') return -1;
    *length = end + 1;
    return n;
}

// A piece of input text for sentencepiece, or a sentinel (n >= 0).
struct Segment {
    std::string_view text;
    int64_t sentinel = -1;
};

// Splits at "<extra_id_N>" (N < extra_ids). Like Hugging Face's T5 tokenizers (the sentinels are added
// tokens with lstrip and rstrip), whitespace around a sentinel is dropped and each stretch of text is
// encoded on its own, so it gets sentencepiece's leading "▁": "a <extra_id_0> b" and "a<extra_id_0>b"
// both become ▁a <extra_id_0> ▁b.
std::vector<Segment> splitAtSentinels(std::string_view text, int extra_ids) {
    std::vector<Segment> segments;
    size_t start = 0;
    size_t search = 0;
    while (extra_ids > 0) {
        const size_t found = text.find(kSentinelPrefix, search);
        if (found == std::string_view::npos) break;
        size_t length = 0;
        const int64_t n = parseSentinel(text.substr(found), &length);
        search = found + 1;
        if (n < 0 || n >= extra_ids) continue;
        segments.push_back({trimRight(text.substr(start, found - start))});
        segments.push_back({{}, n});
        const std::string_view rest = trimLeft(text.substr(found + length));
        start = search = text.size() - rest.size();
    }
    segments.push_back({text.substr(start)});
    return segments;
}

fs::path checkedFile(const fs::path& path) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (!fs::exists(status)) throw Error(path.string() + ": file not found");
    if (fs::is_directory(status)) throw Error(path.string() + ": is a directory, not a file");
    if (!std::ifstream(path, std::ios::binary)) throw Error(path.string() + ": cannot be opened for reading");
    return path;
}

nlohmann::json readJson(const fs::path& path) {
    std::ifstream in(checkedFile(path), std::ios::binary);
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path.string() + ": malformed JSON (" + e.what() + ")");
    }
}

// Hugging Face's default for T5Tokenizer when the config does not say.
constexpr int kDefaultExtraIds = 100;
// Far above any real T5 (100), low enough that size() and the sentinel ids cannot overflow.
constexpr int64_t kMaxExtraIds = 1000000;

int extraIdsFromConfig(const fs::path& config_path) {
    const nlohmann::json config = readJson(config_path);
    if (!config.is_object()) throw Error(config_path.string() + ": expected a JSON object");
    const auto it = config.find("extra_ids");
    if (it == config.end()) return kDefaultExtraIds;
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxExtraIds) {
        throw Error(config_path.string() + ": \"extra_ids\" must be an integer from 0 to " +
                    std::to_string(kMaxExtraIds) + ", got " + it->dump());
    }
    return it->get<int>();
}

}  // namespace

// The dlopen'ed shim: its path and its entry points, resolved once per process and never unloaded.
class SpmShim {
public:
    static const SpmShim& instance() {
        // A failed open throws out of the initialiser, so the next call tries again.
        static const SpmShim shim = open();
        return shim;
    }

    std::string path;
    decltype(&phatgoose_spm_abi_version) abi_version = nullptr;
    decltype(&phatgoose_spm_release) release = nullptr;
    decltype(&phatgoose_spm_load) load = nullptr;
    decltype(&phatgoose_spm_free) free = nullptr;
    decltype(&phatgoose_spm_piece_count) piece_count = nullptr;
    decltype(&phatgoose_spm_is_control) is_control = nullptr;
    decltype(&phatgoose_spm_encode_ids) encode_ids = nullptr;
    decltype(&phatgoose_spm_encode_pieces) encode_pieces = nullptr;
    decltype(&phatgoose_spm_decode) decode = nullptr;
    decltype(&phatgoose_spm_id_to_piece) id_to_piece = nullptr;
    decltype(&phatgoose_spm_piece_to_id) piece_to_id = nullptr;
    decltype(&phatgoose_spm_train) train = nullptr;

    // Turns the shim's error convention into phatgoose::Error: "<context> (<sentencepiece's reason>)".
    // `error` is read only here, after the call that fills it has run (a by-value argument could be
    // evaluated before that call).
    void check(int status, char** error, const std::string& context) const {
        ShimOwned<char> owned(*error, release);
        if (status == 0) return;
        throw Error(context + " (" + (owned ? owned.get() : "sentencepiece gave no reason") + ")");
    }

private:
    static SpmShim open() {
        std::string tried;
        for (const fs::path& candidate : shimCandidates()) {
            // DEEPBIND keeps the shim's libsentencepiece bound to its own protobuf, not libtorch's.
            void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
            if (handle != nullptr) return bind(handle, candidate.string());
            tried += "\n  " + dlMessage();  // names the path
        }
        throw Error(std::string("cannot load the sentencepiece shim ") + PHATGOOSE_SPM_SHIM_NAME +
                    " (set PHATGOOSE_SPM_SHIM to its full path); tried:" + tried);
    }

    static SpmShim bind(void* handle, const std::string& path) {
        SpmShim shim;
        shim.path = path;
        resolve(handle, path, "phatgoose_spm_abi_version", shim.abi_version);
        if (shim.abi_version() != PHATGOOSE_SPM_ABI_VERSION) {
            throw Error(path + ": sentencepiece shim has interface version " +
                        std::to_string(shim.abi_version()) + ", this program needs " +
                        std::to_string(PHATGOOSE_SPM_ABI_VERSION));
        }
        resolve(handle, path, "phatgoose_spm_release", shim.release);
        resolve(handle, path, "phatgoose_spm_load", shim.load);
        resolve(handle, path, "phatgoose_spm_free", shim.free);
        resolve(handle, path, "phatgoose_spm_piece_count", shim.piece_count);
        resolve(handle, path, "phatgoose_spm_is_control", shim.is_control);
        resolve(handle, path, "phatgoose_spm_encode_ids", shim.encode_ids);
        resolve(handle, path, "phatgoose_spm_encode_pieces", shim.encode_pieces);
        resolve(handle, path, "phatgoose_spm_decode", shim.decode);
        resolve(handle, path, "phatgoose_spm_id_to_piece", shim.id_to_piece);
        resolve(handle, path, "phatgoose_spm_piece_to_id", shim.piece_to_id);
        resolve(handle, path, "phatgoose_spm_train", shim.train);
        return shim;
    }

    template <typename Fn>
    static void resolve(void* handle, const std::string& path, const char* name, Fn*& slot) {
        dlerror();
        void* symbol = dlsym(handle, name);
        if (symbol == nullptr) {
            throw Error(path + ": not a sentencepiece shim, " + name + " is missing (" + dlMessage() + ")");
        }
        slot = reinterpret_cast<Fn*>(symbol);
    }
};

struct Tokenizer::Impl {
    struct ModelFree {
        decltype(&phatgoose_spm_free) free;
        void operator()(phatgoose_spm* model) const { free(model); }
    };

    const SpmShim* shim = nullptr;
    std::unique_ptr<phatgoose_spm, ModelFree> model{nullptr, ModelFree{nullptr}};
    std::string source;  // the model file, for messages
    int64_t piece_count = 0;
    int extra_ids = 0;

    bool isPiece(int64_t id) const { return id >= 0 && id < piece_count; }
    bool isSentinel(int64_t id) const { return id >= piece_count && id < piece_count + extra_ids; }

    std::vector<int> encodeIds(std::string_view text) const {
        int* ids = nullptr;
        size_t count = 0;
        char* error = nullptr;
        shim->check(shim->encode_ids(model.get(), text.data(), text.size(), &ids, &count, &error), &error,
                    source + ": encoding failed");
        ShimOwned<int> owned(ids, shim->release);
        return std::vector<int>(ids, ids + count);
    }

    void appendPieces(std::string_view text, std::vector<std::string>& out) const {
        char* bytes = nullptr;
        size_t* lengths = nullptr;
        size_t count = 0;
        char* error = nullptr;
        shim->check(
            shim->encode_pieces(model.get(), text.data(), text.size(), &bytes, &lengths, &count, &error),
            &error, source + ": encoding failed");
        ShimOwned<char> owned_bytes(bytes, shim->release);
        ShimOwned<size_t> owned_lengths(lengths, shim->release);
        size_t offset = 0;
        for (size_t i = 0; i < count; ++i) {
            out.emplace_back(bytes + offset, lengths[i]);
            offset += lengths[i];
        }
    }

    std::string decodePieces(const std::vector<int>& ids) const {
        char* text = nullptr;
        size_t length = 0;
        char* error = nullptr;
        shim->check(shim->decode(model.get(), ids.data(), ids.size(), &text, &length, &error), &error,
                    source + ": decoding failed");
        ShimOwned<char> owned(text, shim->release);
        return std::string(text, length);
    }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromModelDir(const fs::path& model_dir) {
    const fs::path config = model_dir / "tokenizer_config.json";
    std::error_code ec;
    const int extra_ids = fs::exists(config, ec) ? extraIdsFromConfig(config) : kDefaultExtraIds;
    return fromFile(model_dir / "spiece.model", extra_ids);
}

Tokenizer Tokenizer::fromFile(const fs::path& spiece_model, int extra_ids) {
    if (extra_ids < 0) {
        throw Error(spiece_model.string() + ": extra_ids must not be negative, got " +
                    std::to_string(extra_ids));
    }
    checkedFile(spiece_model);
    const SpmShim& shim = SpmShim::instance();
    char* error = nullptr;
    phatgoose_spm* model = shim.load(spiece_model.c_str(), &error);
    shim.check(model == nullptr ? 1 : 0, &error, spiece_model.string() + ": not a sentencepiece model");
    Tokenizer tokenizer;
    tokenizer.impl_->shim = &shim;
    tokenizer.impl_->model = {model, Impl::ModelFree{shim.free}};
    tokenizer.impl_->source = spiece_model.string();
    tokenizer.impl_->piece_count = shim.piece_count(model);
    tokenizer.impl_->extra_ids = extra_ids;
    return tokenizer;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_eos) const {
    std::vector<int64_t> ids;
    for (const Segment& segment : splitAtSentinels(text, impl_->extra_ids)) {
        if (segment.sentinel >= 0) {
            ids.push_back(sentinelId(static_cast<int>(segment.sentinel)));
        } else if (!segment.text.empty()) {
            const std::vector<int> pieces = impl_->encodeIds(segment.text);
            ids.insert(ids.end(), pieces.begin(), pieces.end());
        }
    }
    if (add_eos) ids.push_back(kEos);
    return ids;
}

std::vector<std::string> Tokenizer::encodeAsPieces(const std::string& text) const {
    std::vector<std::string> pieces;
    for (const Segment& segment : splitAtSentinels(text, impl_->extra_ids)) {
        if (segment.sentinel >= 0) {
            pieces.push_back(std::string(kSentinelPrefix) + std::to_string(segment.sentinel) + ">");
        } else if (!segment.text.empty()) {
            impl_->appendPieces(segment.text, pieces);
        }
    }
    return pieces;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
    std::vector<std::string> parts;
    std::vector<int> run;  // consecutive sentencepiece ids, decoded together so pieces join up
    const auto flush = [&] {
        if (!run.empty()) parts.push_back(impl_->decodePieces(run));
        run.clear();
    };
    for (const int64_t id : ids) {
        // sentencepiece itself renders control pieces (pad, eos) as nothing, which is what skipping means.
        const bool shown_by_spm =
            impl_->isPiece(id) && (skip_special || !impl_->shim->is_control(impl_->model.get(), id));
        if (shown_by_spm) {
            run.push_back(static_cast<int>(id));
            continue;
        }
        if (skip_special && !impl_->isSentinel(id)) continue;  // padding rows beyond the tokenizer
        flush();
        parts.push_back(idToPiece(id));
    }
    flush();
    std::string text;
    for (const std::string& part : parts) {
        if (part.empty()) continue;
        if (!text.empty()) text += ' ';
        text += part;
    }
    return text;
}

std::string Tokenizer::idToPiece(int64_t id) const {
    if (impl_->isPiece(id)) {
        size_t length = 0;
        const char* piece = impl_->shim->id_to_piece(impl_->model.get(), static_cast<int>(id), &length);
        return std::string(piece, length);
    }
    if (impl_->isSentinel(id)) return std::string(kSentinelPrefix) + std::to_string(size() - 1 - id) + ">";
    return "<id_" + std::to_string(id) + ">";
}

int64_t Tokenizer::pieceToId(const std::string& piece) const {
    size_t length = 0;
    const int64_t n = parseSentinel(piece, &length);
    if (n >= 0 && n < impl_->extra_ids && length == piece.size()) return sentinelId(static_cast<int>(n));
    return impl_->shim->piece_to_id(impl_->model.get(), piece.data(), piece.size());
}

int64_t Tokenizer::pieceCount() const {
    return impl_->piece_count;
}

int64_t Tokenizer::size() const {
    return impl_->piece_count + impl_->extra_ids;
}

int64_t Tokenizer::sentinelId(int n) const {
    if (n < 0 || n >= impl_->extra_ids) {
        throw Error(impl_->source + ": no sentinel <extra_id_" + std::to_string(n) + "> (the tokenizer has " +
                    std::to_string(impl_->extra_ids) + ")");
    }
    return size() - 1 - n;
}

namespace {

// Protocol buffer wire format, just enough to rewrite two strings of a sentencepiece ModelProto.
uint64_t readVarint(const std::string& b, size_t& pos) {
    uint64_t v = 0;
    for (int shift = 0; pos < b.size() && shift < 64; shift += 7) {
        const uint8_t byte = uint8_t(b[pos++]);
        v |= uint64_t(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return v;
    }
    throw Error("a sentencepiece model with a malformed field");
}
void writeVarint(std::string& out, uint64_t v) {
    for (; v >= 0x80; v >>= 7) out += char(uint8_t(v) | 0x80);
    out += char(v);
}
// Copies the fields of `b` to a new message, passing each length-delimited field to `edit` (which may
// rewrite its bytes, or return false to drop it).
std::string rewriteFields(const std::string& b, const std::function<bool(uint64_t, std::string&)>& edit) {
    std::string out;
    for (size_t pos = 0; pos < b.size();) {
        const size_t start = pos;
        const uint64_t key = readVarint(b, pos);
        const uint64_t field = key >> 3, wire = key & 7;
        if (wire == 2) {
            const uint64_t length = readVarint(b, pos);
            if (length > b.size() - pos) throw Error("a sentencepiece model with a truncated field");
            std::string value = b.substr(pos, size_t(length));
            pos += size_t(length);
            if (!edit(field, value)) continue;
            writeVarint(out, key);
            writeVarint(out, value.size());
            out += value;
            continue;
        }
        if (wire == 0)
            readVarint(b, pos);
        else if (wire == 1)
            pos += 8;
        else if (wire == 5)
            pos += 4;
        else
            throw Error("a sentencepiece model with an unknown field type");
        if (pos > b.size()) throw Error("a sentencepiece model with a truncated field");
        out += b.substr(start, pos - start);
    }
    return out;
}

// sentencepiece records the training input and output paths in the model (TrainerSpec fields 1 and 2 of
// ModelProto field 2); keeping only their file names makes a model trained in a temporary folder the same
// bytes wherever it was trained.
void dropRecordedFolders(const std::filesystem::path& model) {
    std::ifstream in(model, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string rewritten = rewriteFields(bytes, [](uint64_t field, std::string& value) {
        if (field != 2) return true;
        value = rewriteFields(value, [](uint64_t spec_field, std::string& path) {
            if (spec_field == 1 || spec_field == 2) path = std::filesystem::path(path).filename().string();
            return true;
        });
        return true;
    });
    writeFileAtomically(model, rewritten);
}

}  // namespace

void Tokenizer::train(const TokenizerTrainOptions& options) {
    checkedFile(options.input_text);
    const std::vector<std::pair<std::string, std::string>> settings = {
        {"input", options.input_text.string()},
        {"model_prefix", options.model_prefix.string()},
        {"vocab_size", std::to_string(options.vocab_size)},
        {"model_type", options.model_type},
        {"hard_vocab_limit", options.hard_vocab_limit ? "true" : "false"},
        {"pad_id", std::to_string(kPad)},
        {"eos_id", std::to_string(kEos)},
        {"unk_id", std::to_string(kUnk)},
        {"bos_id", "-1"},
        // Small fixture and demo corpora: every character they contain should get a piece, not <unk>.
        {"character_coverage", "1.0"},
        // sentencepiece logs every training step to stderr; keep only errors, which come back as status.
        {"minloglevel", "2"},
    };
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (const auto& [key, value] : settings) {
        keys.push_back(key.c_str());
        values.push_back(value.c_str());
    }
    const SpmShim& shim = SpmShim::instance();
    char* error = nullptr;
    shim.check(shim.train(keys.data(), values.data(), keys.size(), &error), &error,
               options.input_text.string() + ": training a sentencepiece model failed");
    dropRecordedFolders(options.model_prefix.string() + ".model");
}

std::string Tokenizer::shimPath() {
    return SpmShim::instance().path;
}

bool truncateKeepingEos(std::vector<int64_t>& ids, int64_t max_tokens, int64_t eos) {
    if (max_tokens < 1)
        throw Error("an input limit must be at least one token, got " + std::to_string(max_tokens));
    if (int64_t(ids.size()) <= max_tokens) return false;
    ids.resize(size_t(max_tokens - 1));
    ids.push_back(eos);
    return true;
}

}  // namespace phatgoose
