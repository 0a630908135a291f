#pragma once
// Where a run starts: fresh, or a complete checkpoint whose model matches the config. The run's
// rank 0 decides and every rank learns its answer (path or error), so all ranks load the same
// checkpoint even when their views of a shared file system differ, and fail alike when none fits.
#include <map>
#include <optional>
#include <string>

#include "checkpoint/sharded_checkpoint.h"
#include "cluster/communicator.h"
#include "model/options.h"

namespace agave::checkpoint {

// --resume: auto (the run's newest complete checkpoint, if any), never (a fresh start, refused
// when the run already has checkpoints), or a checkpoint folder / a folder holding checkpoints.
struct ResumeRequest {
  enum class Mode { kAuto, kNever, kFolder };
  Mode mode = Mode::kAuto;
  std::string folder;  // kFolder only

  // "auto", "never", or a folder; empty is an error (std::invalid_argument).
  static ResumeRequest parse(const std::string& text);
};

// What must be equal between a checkpoint and the config that resumes it, key by key.
// `dataset`: the data set's name (data::dataset_name), which the model was fitted to.
std::map<std::string, std::string> model_signature(const model::AgaveOptions& options,
                                                   const std::string& dataset);

struct ResumePoint {
  std::string dir;  // empty: a fresh start
  CheckpointMeta meta;
  bool fresh() const { return dir.empty(); }
};

// Collective over the run's ranks. Throws the same CheckpointError on every rank when the
// request cannot be met or the checkpoint's model signature differs from `signature`.
ResumePoint decide_resume(const ResumeRequest& request, const std::string& checkpoint_root,
                          const std::string& run_name,
                          const std::map<std::string, std::string>& signature,
                          cluster::Communicator& comm);

}  // namespace agave::checkpoint
