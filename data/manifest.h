#pragma once
// The manifest of one split: `<dir>/<split>.manifest.json`, listing its shards in order with
// their counts and checksums. It is written last (to a temporary name, then renamed), so a split
// without a manifest does not exist, whatever shard files lie beside it.
#include <cstdint>
#include <string>
#include <vector>

#include "data/options.h"

namespace agave::data {

inline constexpr const char* kManifestFormat = "agave-image-shards";

struct ManifestShard {
  std::string file;  // relative to the manifest's folder
  int64_t count = 0;
  int64_t first_index = 0;
  std::string sha256;
};

// What a split is: what a manifest records of it and what `agave_data inspect` reports.
struct SplitInfo {
  std::string dataset;
  std::string split;
  std::string source;
  ImageShape shape;
  int64_t count = 0;
};

struct Manifest : SplitInfo {
  std::string path;  // where it was read from or written to
  std::vector<ManifestShard> shards;

  std::string dir() const;
  std::string shard_path(const ManifestShard& s) const;
};

// Limits on what a manifest may describe (docs/data-format.md): its own size, and the images of
// a split (2^40: the labels of a split are held in memory, one byte each).
inline constexpr uint64_t kMaxManifestBytes = uint64_t{64} << 20;
inline constexpr int64_t kMaxSplitImages = int64_t{1} << 40;

std::string manifest_path(const std::string& dir, const std::string& split);
// Validates structure and internal consistency (counts add up, first indices contiguous, file
// names plain names inside the folder, dimensions positive); io::BadDataError naming the field.
Manifest read_manifest(const std::string& path);
// The same for manifest text already in memory (`path` names it in errors); the fuzz target's
// entry point.
Manifest parse_manifest(const std::string& text, const std::string& path);
void write_manifest(const std::string& path, const Manifest& manifest);
// `manifest_or_dir` is a manifest file, or a folder holding `<split>.manifest.json`.
Manifest open_manifest(const std::string& manifest_or_dir, const std::string& split);

}  // namespace agave::data
