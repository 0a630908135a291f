#pragma once
// The probe times of `train.precision: auto` (trainer/precision_probe.h), kept per machine kind
// in the user's cache folder so that a machine measures once, not at every start: one JSON file
// of entries keyed by CPU model, LibTorch version and probe layout, since a home folder shared
// by a cluster's nodes serves several machine kinds.
//
//   {"entries": {"AMD EPYC | LibTorch 1.13.1 | ...": {"fp32_ms": 20.1, "bf16_ms": 11.3}}}
//
// A cache is a convenience: a missing, unreadable or corrupt file reads as empty, and the next
// store replaces it whole (atomically).
#include <filesystem>
#include <optional>
#include <string>

#include "trainer/precision.h"

namespace agave::trainer {

class PrecisionCache {
 public:
  explicit PrecisionCache(std::filesystem::path file) : file_(std::move(file)) {}

  // $XDG_CACHE_HOME/agave/precision.json, else $HOME/.cache/agave/precision.json; none when
  // neither variable is set.
  static std::optional<std::filesystem::path> default_file();

  // The times stored under `key` (marked cached); none when absent or unreadable.
  std::optional<ProbeTimes> find(const std::string& key) const;

  // Adds or replaces `key`'s entry, keeping the others when the file reads; creates the folder.
  // Throws std::runtime_error naming the file when it cannot be written.
  void store(const std::string& key, const ProbeTimes& times) const;

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

}  // namespace agave::trainer
