// The only code that touches libsentencepiece (see spm_shim.h for why and for the conventions). Every entry
// point catches everything: an exception must not unwind into a caller that only knows a C signature.
#include "spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

struct phatgoose_spm {
    sentencepiece::SentencePieceProcessor processor;
};

namespace {

// malloc'ed so the caller can give every shim buffer back the same way, whatever it holds.
template <typename T>
T* copyToMalloc(const T* data, size_t count, size_t extra = 0) {
    void* buffer = std::malloc((count + extra) * sizeof(T) + 1);
    if (buffer == nullptr) throw std::bad_alloc();
    if (count > 0) std::memcpy(buffer, data, count * sizeof(T));
    return static_cast<T*>(buffer);
}

char* copyString(const std::string& text) {
    char* copy = copyToMalloc(text.data(), text.size(), 1);
    copy[text.size()] = '\0';
    return copy;
}

void setError(char** error, const std::string& message) {
    if (error == nullptr) return;
    // A failed allocation here leaves *error NULL; the caller still sees the nonzero return.
    try {
        *error = copyString(message);
    } catch (...) {
        *error = nullptr;
    }
}

// Runs `body` and maps sentencepiece failures and exceptions to the C convention.
template <typename Body>
int guarded(char** error, Body&& body) {
    if (error != nullptr) *error = nullptr;
    try {
        const sentencepiece::util::Status status = body();
        if (status.ok()) return 0;
        setError(error, status.ToString());
    } catch (const std::exception& e) {
        setError(error, e.what());
    } catch (...) {
        setError(error, "unknown exception in the sentencepiece shim");
    }
    return 1;
}

bool inRange(const phatgoose_spm* model, int id) {
    return id >= 0 && id < model->processor.GetPieceSize();
}

}  // namespace

extern "C" {

int phatgoose_spm_abi_version(void) {
    return PHATGOOSE_SPM_ABI_VERSION;
}

void phatgoose_spm_release(void* buffer) {
    std::free(buffer);
}

phatgoose_spm* phatgoose_spm_load(const char* path, char** error) {
    phatgoose_spm* model = nullptr;
    const int failed = guarded(error, [&] {
        model = new phatgoose_spm;
        return model->processor.Load(path);
    });
    if (failed == 0) return model;
    delete model;
    return nullptr;
}

void phatgoose_spm_free(phatgoose_spm* model) {
    delete model;
}

int phatgoose_spm_piece_count(const phatgoose_spm* model) {
    return model->processor.GetPieceSize();
}

int phatgoose_spm_is_control(const phatgoose_spm* model, int id) {
    return inRange(model, id) && model->processor.IsControl(id) ? 1 : 0;
}

int phatgoose_spm_encode_ids(const phatgoose_spm* model, const char* text, size_t text_len, int** ids,
                             size_t* count, char** error) {
    return guarded(error, [&] {
        std::vector<int> out;
        auto status = model->processor.Encode(std::string(text, text_len), &out);
        if (!status.ok()) return status;
        *ids = copyToMalloc(out.data(), out.size());
        *count = out.size();
        return status;
    });
}

int phatgoose_spm_encode_pieces(const phatgoose_spm* model, const char* text, size_t text_len, char** bytes,
                                size_t** lengths, size_t* count, char** error) {
    return guarded(error, [&] {
        std::vector<std::string> pieces;
        auto status = model->processor.Encode(std::string(text, text_len), &pieces);
        if (!status.ok()) return status;
        std::string joined;
        std::vector<size_t> sizes;
        for (const std::string& piece : pieces) {
            joined += piece;
            sizes.push_back(piece.size());
        }
        *bytes = copyString(joined);
        try {
            *lengths = copyToMalloc(sizes.data(), sizes.size());
        } catch (...) {
            std::free(*bytes);
            throw;
        }
        *count = sizes.size();
        return status;
    });
}

int phatgoose_spm_decode(const phatgoose_spm* model, const int* ids, size_t count, char** text,
                         size_t* text_len, char** error) {
    return guarded(error, [&] {
        const std::vector<int> in(ids, ids + count);
        for (int id : in) {
            // sentencepiece would CHECK-fail or log; the caller is told instead.
            if (!inRange(model, id)) {
                return sentencepiece::util::Status(sentencepiece::util::StatusCode::kOutOfRange,
                                                   "id " + std::to_string(id) + " is outside the vocabulary");
            }
        }
        std::string out;
        auto status = model->processor.Decode(in, &out);
        if (!status.ok()) return status;
        *text = copyString(out);
        *text_len = out.size();
        return status;
    });
}

const char* phatgoose_spm_id_to_piece(const phatgoose_spm* model, int id, size_t* len) {
    if (!inRange(model, id)) return nullptr;
    const std::string& piece = model->processor.IdToPiece(id);
    *len = piece.size();
    return piece.c_str();
}

int phatgoose_spm_piece_to_id(const phatgoose_spm* model, const char* piece, size_t len) {
    try {
        return model->processor.PieceToId(std::string(piece, len));
    } catch (...) {
        return model->processor.unk_id();
    }
}

int phatgoose_spm_train(const char* const* keys, const char* const* values, size_t count, char** error) {
    return guarded(error, [&] {
        std::unordered_map<std::string, std::string> options;
        for (size_t i = 0; i < count; ++i) options[keys[i]] = values[i];
        return sentencepiece::SentencePieceTrainer::Train(options);
    });
}

}  // extern "C"
