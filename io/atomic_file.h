#pragma once
// Whole-file writes that a crash never leaves half done: a reader sees the old file or the new
// one, never a truncated one (summary.json, config.yaml, failed.json, manifests).
#include <string>

namespace agave::io {

// Writes `text` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs
// the folder. Throws std::runtime_error naming the file and the cause.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace agave::io
