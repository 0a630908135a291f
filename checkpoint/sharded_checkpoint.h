#pragma once
// Sharded checkpoints (docs/checkpoints.md): one folder per step; every rank writes its share of
// the named tensors (balanced by bytes) plus its own RNG state into its own HDF5 shard; rank 0
// writes manifest.json last (temporary file, fsync, rename), then swaps the `latest` pointer.
// A folder without a manifest is not a checkpoint: it is ignored and cleaned up.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/communicator.h"

namespace agave::checkpoint {

// A checkpoint that cannot be used: missing or corrupt files, checksum mismatch, or a model
// that does not match the config.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A checkpoint that could not be written (disk full, I/O error). Not a CheckpointError: the
// run failed, its checkpoints did not; the newest complete one is intact.
class CheckpointWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CheckpointMeta {
  int64_t step = 0;  // optimizer steps done; training continues at this step
  std::string phase;
  int world_size = 1;
  int64_t loader_epoch = 0;
  int64_t loader_index = 0;
  int64_t loader_global_batch = 0;  // images per global batch the position counts in; 0: unknown
  uint64_t seed = 0;
  std::map<std::string, std::string> model_signature;  // what must match to resume
  std::string config;                                  // the resolved YAML config
  // The build that wrote it (version/version.h; save() records its own); empty in manifests
  // written before builds were recorded.
  std::string agave_version, agave_commit;
};

struct SaveResult {
  std::string dir;
  double seconds = 0;
  int64_t bytes = 0;  // all shards
};

class ShardedCheckpoint {
 public:
  // `root` holds step-NNNNNNNN folders and `latest`; keeps the newest `keep` complete ones.
  // `after_shards(step)`: called once every shard of a save is written, before the manifest
  // makes it a checkpoint; the failure tests kill a rank there (empty in real runs).
  using AfterShards = std::function<void(int64_t step)>;
  ShardedCheckpoint(std::string root, int64_t keep, cluster::Communicator& comm,
                    AfterShards after_shards = nullptr);

  // Collective. `state`: the same names and shapes on every rank (each rank writes its share);
  // `rank_local`: this rank's own tensors (RNG state), written to its shard only.
  // A write that fails on any rank fails the save on all: rank 0 removes the partial folder and
  // throws CheckpointWriteError (the first failing file, the cause, the newest complete
  // checkpoint); the other ranks first wait, up to the communicator's timeout, for rank 0's
  // handler to end the job, so that the error is printed once, then throw the same.
  SaveResult save(const CheckpointMeta& meta, const std::map<std::string, torch::Tensor>& state,
                  const std::map<std::string, torch::Tensor>& rank_local);

  // The newest complete checkpoint folder under `root`, if any.
  static std::optional<std::string> latest(const std::string& root);
  // Reads and validates a manifest (no tensors).
  static CheckpointMeta read_meta(const std::string& dir);

  // Collective. Verifies every shard's SHA-256 (each shard on one rank; a mismatch is the same
  // CheckpointError on every rank), then copies every tensor of `state` from the checkpoint
  // (by name; a missing or extra name is an error). `rank_local` is read from this rank's shard
  // when the checkpoint has this world size and rank, and left alone otherwise (returns false).
  bool load(const std::string& dir, std::map<std::string, torch::Tensor>& state,
            std::map<std::string, torch::Tensor>* rank_local) const;

  // Reads only the tensors named in `state` (other tensors of the checkpoint are ignored; a
  // name the checkpoint lacks, or a shape or dtype that differs, is a CheckpointError), after
  // verifying the SHA-256 of the shards they come from. Needs no communicator: for readers of
  // a checkpoint such as agave_eval, which want the model and EMA weights only.
  static void load_subset(const std::string& dir, std::map<std::string, torch::Tensor>& state);

  // Removes folders without a manifest and all but the newest `keep` complete ones up to the
  // folder just `written` (rank 0); never that folder, nor the one `latest` names.
  void prune(const std::filesystem::path& written) const;
  const std::string& root() const { return root_; }

 private:
  [[noreturn]] void fail_save(const std::string& dir, const std::string& why) const;

  std::string root_;
  int64_t keep_;
  cluster::Communicator& comm_;
  AfterShards after_shards_;
};

// Which rank stores which tensor: largest first onto the least-loaded rank, ties by name and
// rank, so every rank computes the same answer.
std::map<std::string, int> assign_shards(const std::map<std::string, torch::Tensor>& state,
                                         int world_size);

}  // namespace agave::checkpoint
