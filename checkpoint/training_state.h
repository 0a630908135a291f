#pragma once
// The checkpoint key scheme (docs/checkpoints.md), in one place: a run's state lives under
//   model/<parameter or buffer>              the trained weights
//   ema/<parameter>                          the Polyak (EMA) shadow
//   optim/<parameter>/{exp_avg,exp_inf,step} optim::Adamax's moments and step count (int64 scalar)
//   rng/cpu                                  this rank's generator (rank-local)
// The trainer, agave_eval and bench_checkpoint all name tensors through this file, so a
// checkpoint written by one is read by the others.
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/ema.h"
#include "optim/adamax.h"

namespace agave::checkpoint {

namespace keys {
std::string model(const std::string& name);
std::string ema(const std::string& name);
std::string optim(const std::string& parameter, const std::string& field);
inline constexpr const char* kCpuRng = "rng/cpu";
}  // namespace keys

using TensorMap = std::map<std::string, torch::Tensor>;

// Everything a resume needs, by checkpoint name, aliasing the live tensors: loading into
// tensors() writes straight into the model, the EMA and the optimizer.
class TrainingState {
 public:
  // Never-stepped parameters get explicit zero moments (optim::Adamax's own lazy start), so every
  // name exists in every checkpoint.
  TrainingState(torch::nn::Module& model, model::Ema& ema, optim::Adamax& optimizer);
  TrainingState(const TrainingState&) = delete;
  TrainingState& operator=(const TrainingState&) = delete;

  TensorMap& tensors() { return tensors_; }
  // After a load into tensors(): the step counts (stored as tensors) back into the optimizer,
  // and into the EMA's warm-up, which counts the same updates (model/ema.h).
  void apply_loaded_steps();

 private:
  TensorMap tensors_;
  struct Steps {
    std::string parameter;
    std::string key;
    optim::AdamaxState* state;
  };
  std::vector<Steps> steps_;
  model::Ema& ema_;
};

// The weights evaluation reads, aliasing `model`'s tensors: its parameters from the EMA shadow
// (`use_ema`) or the trained weights, and its buffers. For load_subset (agave_eval).
TensorMap evaluation_weights(torch::nn::Module& model, bool use_ema);

}  // namespace agave::checkpoint
