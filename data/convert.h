#pragma once
// Raw source → HDF5 shards + one manifest per split.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data/options.h"
#include "data/progress.h"

namespace agave::data {

struct ConvertOptions {
  std::optional<Dataset> dataset;  // nullopt: detect_dataset(source)
  std::string source;
  std::string output;
  int64_t images_per_shard = 10000;
  int64_t chunk_images = 0;  // 0: default_chunk_images
  int compression = 0;       // gzip level 0..9
};

// Converts every split ("train", "test"). Per split: the old manifest is removed first, shards
// are written as `<split>-NNNNN-of-NNNNN.h5.tmp` and renamed only once all of them are
// complete, and the manifest comes last. An interrupted run leaves no manifest, hence nothing
// that a reader accepts. Returns the manifests written.
std::vector<Manifest> convert(const ConvertOptions& options, const ProgressFn& progress = {});

// True when `dir` holds a readable manifest for both splits of `dataset`.
bool shards_ready(const std::string& dir, Dataset dataset);

// The trainer's entry point: converts `options.source` into `options.shards` unless it is
// already there, under an exclusive lock on `<shards>/.convert.lock` so ranks sharing a file
// system convert once. Returns the shard folder. The lock is waited for at most
// `lock_timeout_seconds` (a io::DataError naming its holder past that); `progress` is called about
// every second of that wait too, and may throw to abandon it (a stop request).
std::string ensure_shards(const DataOptions& options, const ProgressFn& progress = {},
                          double lock_timeout_seconds = 300);

}  // namespace agave::data
