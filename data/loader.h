#pragma once
// Per-rank streaming loader over the HDF5 shards of one split.
//
// Epoch order: the split's storage chunks are permuted with a seed derived from (seed, epoch);
// rank r of n takes the contiguous slice [r·N/n, (r+1)·N/n) of that chunk order (the first
// N mod n ranks hold one image more), so ranks read disjoint chunks (only the two chunks at a
// slice's ends are shared). Within its slice a rank groups consecutive chunks into windows of
// about `shuffle_window` images and permutes the images of each window. docs/data-format.md
// states the coverage and drop_last rules.
//
// A background thread reads whole chunks with pread() (inflating gzip chunks with zlib) and
// fills a bounded queue of `prefetch` batches; no HDF5 call happens on that thread for shards
// written by agave, so it never contends with HDF5 use elsewhere in the process.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "data/manifest.h"
#include "data/options.h"

namespace agave::data {

struct Batch {
  torch::Tensor images;   // uint8 N×C×H×W, page-locked when CUDA is available
  torch::Tensor labels;   // int64 N
  torch::Tensor indices;  // int64 N: each image's position in its split
  int64_t epoch = 0;
  int64_t index = 0;  // batch number within the epoch, from 0
};

// The next batch a loader will return: batch `index` of `epoch`. Every rank of a lock-step run
// holds the same position, so a checkpoint stores one.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && index == o.index; }
};

class ShardLoader {
 public:
  // `manifest_or_dir`: a `<split>.manifest.json`, or the folder holding it. Opens and validates
  // every shard (not the checksums: `agave_data inspect` verifies those) and starts prefetching
  // epoch 0.
  ShardLoader(const std::string& manifest_or_dir, const std::string& split, LoaderOptions options);
  ~ShardLoader();
  ShardLoader(const ShardLoader&) = delete;
  ShardLoader& operator=(const ShardLoader&) = delete;

  // The next batch of the current epoch; nullopt once the epoch is done, after which the next
  // call starts the following epoch. Rethrows (as DataError) any read error of the background
  // thread.
  std::optional<Batch> next();

  LoaderPosition position() const;
  // Continues from `p` exactly as an uninterrupted loader with the same split, options and world
  // size would: same images, same order, same batches.
  void restore(const LoaderPosition& p);

  int64_t batches_per_epoch() const;  // this rank's; equal on all ranks when drop_last
  int64_t images_per_epoch() const;   // this rank's
  int64_t split_size() const;         // images in the split
  ImageShape image_shape() const;
  const Manifest& manifest() const;
  const LoaderOptions& options() const;
  // Seconds next() spent waiting for the background thread since construction (the trainer's
  // data-wait metric).
  double wait_seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agave::data
