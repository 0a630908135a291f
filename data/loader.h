#pragma once
// Streaming loader over the HDF5 shards of one split, one instance per rank.
//
// Which images each rank reads at each step, at any world size, is the epoch plan's
// (data/epoch_plan.h): one permutation of the split per epoch, the same on every rank, cut into
// global batches of world × batch_size of which each rank takes its piece. docs/data-format.md
// states the drop_last rules, the split of a final partial batch and resuming at another world
// size.
//
// A background thread works window by window: it allocates the batches the window's positions
// fall into and copies each image this rank needs straight from the memory-mapped shard file
// into its batch slot (a gzip chunk is inflated into a buffer first), then queues the finished
// batches; it reads ahead while fewer than `prefetch` batches are queued. No HDF5 call happens
// on that thread for shards written by agave, so it never contends with HDF5 use elsewhere in
// the process.
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
  torch::Tensor indices;  // int64 N: each image's index in its split (not its epoch position)
  int64_t epoch = 0;
  int64_t index = 0;  // batch number within the epoch, from 0
};

// The next batch a loader will return: batch `index` of `epoch`. Every rank of a lock-step run
// holds the same position, so a checkpoint stores one (with the global batch size it was taken
// at, for map_position).
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
  // call starts the following epoch. Rethrows (as io::DataError) any read error of the background
  // thread.
  std::optional<Batch> next();

  LoaderPosition position() const;
  // Continues from `p` exactly as an uninterrupted loader with the same split, seed, shuffle
  // options and global batch size (world × batch_size) would: same images, same order, same
  // batches. Throws io::DataError when p.index > batches_per_epoch().
  void restore(const LoaderPosition& p);

  // A position taken at global batch size `old_global_batch`, as a position at
  // `new_global_batch` (a resume on another world size or batch size): the new batch holding the
  // first image not yet consumed, rounded down, so the resumed run re-sees at most the images of
  // that one partial batch (fewer than new_global_batch) and skips none. Same sizes: `p` itself.
  // With drop_last the result never exceeds the new batches_per_epoch() when `p` was valid.
  // Throws std::invalid_argument for negative positions or sizes below 1.
  static LoaderPosition map_position(const LoaderPosition& p, int64_t old_global_batch,
                                     int64_t new_global_batch);

  int64_t batches_per_epoch() const;  // this rank's; equal on all ranks when drop_last
  int64_t images_per_epoch() const;   // this rank's
  int64_t global_batch_size() const;  // world × batch_size
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
