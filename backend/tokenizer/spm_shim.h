#pragma once
// The C boundary of the private sentencepiece shim (libphatgoose_spm.so). libsentencepiece carries its own
// protobuf, which clashes with libtorch's (docs/ARCHITECTURE.md, "Machine facts"), so only this shim links it
// and tokenizer.cpp loads it with dlopen(RTLD_LOCAL | RTLD_DEEPBIND). Hence plain C: no C++ types and no
// exceptions cross here.
//
// Conventions: text and pieces are UTF-8 byte strings with explicit lengths (they may hold NUL bytes).
// Buffers the shim hands out are malloc'ed and given back with phatgoose_spm_release(). Functions that can
// fail return 0 on success; on failure they return nonzero and, when `error` is not NULL, set *error to a
// NUL-terminated message the caller releases.
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define PHATGOOSE_SPM_API __attribute__((visibility("default")))
#else
#define PHATGOOSE_SPM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

// Bumped whenever a signature below changes, so a stale shim next to a new program is refused by name
// rather than crashing.
#define PHATGOOSE_SPM_ABI_VERSION 1

typedef struct phatgoose_spm phatgoose_spm;

PHATGOOSE_SPM_API int phatgoose_spm_abi_version(void);
PHATGOOSE_SPM_API void phatgoose_spm_release(void* buffer);

// Returns NULL on failure (with *error set).
PHATGOOSE_SPM_API phatgoose_spm* phatgoose_spm_load(const char* path, char** error);
PHATGOOSE_SPM_API void phatgoose_spm_free(phatgoose_spm* model);

PHATGOOSE_SPM_API int phatgoose_spm_piece_count(const phatgoose_spm* model);
// 1 for control pieces (T5: <pad>, </s>), which sentencepiece's decoder renders as nothing.
PHATGOOSE_SPM_API int phatgoose_spm_is_control(const phatgoose_spm* model, int id);

// *ids receives *count ids (release it).
PHATGOOSE_SPM_API int phatgoose_spm_encode_ids(const phatgoose_spm* model, const char* text, size_t text_len,
                                               int** ids, size_t* count, char** error);
// The surface pieces (an unknown character stays itself, not "<unk>"), concatenated in *bytes, with the
// byte length of each in *lengths (*count entries). Release both.
PHATGOOSE_SPM_API int phatgoose_spm_encode_pieces(const phatgoose_spm* model, const char* text,
                                                  size_t text_len, char** bytes, size_t** lengths,
                                                  size_t* count, char** error);
// Ids must lie in [0, piece_count). *text is NUL-terminated as well as sized.
PHATGOOSE_SPM_API int phatgoose_spm_decode(const phatgoose_spm* model, const int* ids, size_t count,
                                           char** text, size_t* text_len, char** error);

// Borrowed from the model (valid until phatgoose_spm_free); NULL when id is out of range.
PHATGOOSE_SPM_API const char* phatgoose_spm_id_to_piece(const phatgoose_spm* model, int id, size_t* len);
// The unknown id when the piece is not in the vocabulary.
PHATGOOSE_SPM_API int phatgoose_spm_piece_to_id(const phatgoose_spm* model, const char* piece, size_t len);

// Trains with SentencePieceTrainer from `count` key/value option pairs (keys without "--"). Pairs rather
// than one "--key=value ..." string because sentencepiece splits that string at every space, which breaks
// paths with spaces.
PHATGOOSE_SPM_API int phatgoose_spm_train(const char* const* keys, const char* const* values, size_t count,
                                          char** error);

#ifdef __cplusplus
}  // extern "C"
#endif
