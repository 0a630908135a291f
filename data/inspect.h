#pragma once
// What `agave_data inspect` reports: counts, shapes, checksums (recorded and recomputed),
// per-channel mean/std and label counts of shards, manifests or shard folders.
#include <cstdint>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data/options.h"
#include "data/progress.h"

namespace agave::data {

struct ShardReport {
  std::string path;
  int64_t count = 0;
  int64_t chunk_images = 0;
  int compression = 0;
  std::string sha256_attribute;  // recorded in the shard
  std::string sha256_manifest;   // recorded in the manifest ("" for a lone shard)
  std::string sha256_computed;   // "" unless verified
};

struct SplitReport : SplitInfo {
  std::string manifest_path;  // "" for a lone shard
  std::vector<ShardReport> shards;
  // Per channel, of pixel values scaled to [0, 1]; std is the population std.
  std::vector<double> mean, std;
  std::vector<int64_t> label_counts;  // index = label
};

struct InspectReport {
  std::vector<SplitReport> splits;
  // One line each, naming the file: unreadable shards, checksum mismatches, count mismatches.
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

// `path`: a shard (.h5), a manifest (.manifest.json) or a folder of manifests. verify: recompute
// every shard's SHA-256 and compare it with the shard's attribute and the manifest. A path that
// is not any of these throws io::DataError; problems inside the shards are collected instead.
InspectReport inspect(const std::string& path, bool verify, const ProgressFn& progress = {});

}  // namespace agave::data
