#pragma once
// T5's sentencepiece tokenizer. libsentencepiece cannot share a process image with libtorch's protobuf
// (docs/ARCHITECTURE.md, "Machine facts"), so the real work happens in a private shim library (spm_shim.h)
// that this class loads with dlopen(RTLD_LOCAL | RTLD_DEEPBIND). Nothing here links libsentencepiece.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace phatgoose {

class SpmShim;  // the dlopen'ed shim, private to tokenizer.cpp

struct TokenizerTrainOptions {
    std::filesystem::path input_text;    // one sentence a line
    std::filesystem::path model_prefix;  // writes <prefix>.model and <prefix>.vocab
    int vocab_size = 256;
    std::string model_type = "unigram";
    // false: vocab_size is an upper bound, for corpora too small to fill it (sentencepiece refuses
    // otherwise).
    bool hard_vocab_limit = true;
    // T5's special ids: pad 0, eos 1, unk 2; no bos.
};

class Tokenizer {
public:
    static constexpr int64_t kPad = 0;
    static constexpr int64_t kEos = 1;
    static constexpr int64_t kUnk = 2;

    // Loads <model_dir>/spiece.model; reads "extra_ids" from <model_dir>/tokenizer_config.json when present
    // (default 100, as Hugging Face's T5Tokenizer). Throws phatgoose::Error naming the file on failure.
    static Tokenizer fromModelDir(const std::filesystem::path& model_dir);
    static Tokenizer fromFile(const std::filesystem::path& spiece_model, int extra_ids);

    // Appends eos when add_eos. Sentinels "<extra_id_N>" (N < extra_ids) in the text map to their ids; as in
    // Hugging Face's T5 tokenizers, whitespace around a sentinel is dropped and the text on each side is
    // encoded on its own. An empty text gives just [eos]: whether that is an error is the caller's call.
    std::vector<int64_t> encode(const std::string& text, bool add_eos = true) const;
    // The sentencepiece surface pieces (no eos); sentinels appear as "<extra_id_N>".
    std::vector<std::string> encodeAsPieces(const std::string& text) const;
    // Stops at nothing (eos included). With skip_special, pad and eos vanish and ids outside the tokenizer's
    // vocabulary (a model's padding rows) decode to ""; without it they show as "<pad>", "</s>", "<id_N>".
    // Unknown pieces show as sentencepiece's " ⁇ ". Sentinels always show, as "<extra_id_N>" with a single
    // space on each side, so decode(encode(x)) gives x back for text in that form.
    std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const;
    std::string idToPiece(int64_t id) const;            // sentinels and out-of-range ids included
    int64_t pieceToId(const std::string& piece) const;  // unk id when unknown
    int64_t pieceCount() const;                         // sentencepiece vocabulary only
    int64_t size() const;                               // pieces + extra_ids sentinels
    int64_t sentinelId(int n) const;                    // "<extra_id_n>" = size() - 1 - n

    // Trains a sentencepiece model (for test fixtures and the demo workspace).
    static void train(const TokenizerTrainOptions& options);

    // Where the shim was found; for `phatgoose info` and diagnostics.
    static std::string shimPath();

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

private:
    Tokenizer();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// At inference an input is cut to this many tokens (eos kept) unless the user sets another limit: memory and
// time grow with the square of the length, and one stray 20,000-word line must not take the machine.
inline constexpr int64_t kDefaultMaxInputTokens = 512;

// `ids` cut to at most `max_tokens` (>= 1), keeping `eos` as the last token when it had to cut. Returns
// whether it cut.
bool truncateKeepingEos(std::vector<int64_t>& ids, int64_t max_tokens, int64_t eos);

}  // namespace phatgoose
