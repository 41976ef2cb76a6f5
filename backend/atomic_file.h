#pragma once
// Crash-safe file writes: write a temporary file in the target's folder, fsync it, rename it over the
// target, fsync the folder. A cancelled run, a full disk or a crash never leaves a half-written file.
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string_view>

namespace phatgoose {

// Writes `bytes` to `path` atomically. Throws phatgoose::Error naming the path on any failure, after
// removing the temporary file.
void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes);

// The same, streaming: `write` fills the temporary file's stream.
void writeFileAtomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);

}  // namespace phatgoose
