#pragma once
// The demo workspace ships read-only (under /usr/share/phatgoose/demo once installed), but a workspace is
// written to: evaluations fill workbench.sqlite, training adds experts. So programs work on a private copy
// in a user-writable folder, made on first use and made again when the shipped demo changes (a package
// upgrade). The shipped folder is never written. No LibTorch, no Qt, so the CLI can use it as well as the
// workbench.
#include <filesystem>
#include <string>

namespace phatgoose {

// A summary of the shipped demo's files (count, bytes, newest modification time); the copy records the
// summary it was made from, and any difference means the shipped demo was replaced.
std::string demoFingerprint(const std::filesystem::path& shipped);

// Returns `writable_root`/demo, a writable copy of `shipped`, copying it first when there is no copy yet
// or when the copy was made from a different shipped demo. A copy being replaced is kept, once, as
// `writable_root`/demo.previous, since it may hold the user's results. Creates `writable_root` as needed.
// Throws phatgoose::Error naming the folder and the reason when `shipped` is missing or the copy cannot
// be written.
std::filesystem::path userDemoWorkspace(const std::filesystem::path& shipped,
                                        const std::filesystem::path& writable_root);

// The file inside the copy that records the fingerprint it was made from.
inline constexpr const char* kDemoStampFile = ".phatgoose-demo-stamp";

}  // namespace phatgoose
