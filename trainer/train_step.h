#pragma once
// One data-parallel training step, the same one that trains, that bench_train_step times and
// that the in-process tests call:
//   this rank's images → device → forward (per-example randomness, bf16 autocast where asked)
//   → the phase's loss → backward with bucketed gradient all-reduce → one agreed decision
//   (skip a non-finite step, stop) → gradient clipping → optim::Adamax → EMA.
// Collective: every rank of the communicator calls run() for the same step with its share of
// the same global batch.
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/communicator.h"
#include "cluster/gradient_bucketer.h"
#include "cluster/options.h"
#include "model/agave.h"
#include "model/ema.h"
#include "optim/adamax.h"
#include "trainer/fault_hooks.h"
#include "trainer/phase.h"
#include "trainer/stop_request.h"

namespace agave::trainer {

struct TrainStepOptions {
  double grad_clip = 0.0;  // max global gradient norm; 0 = off
  bool bf16 = false;       // bf16 autocast (weights already channels_last)
  uint64_t seed = 1;       // the run's seed: per-example random streams derive from it
  cluster::BucketerOptions buckets;
  // This rank's stop request, read at the step's decision (after the loss, so a request made
  // during the step counts for it) and agreed with the other ranks.
  const std::atomic<bool>* stop = &stop_requested();
};

// What every rank agreed on after a step; sums over the whole global batch.
struct StepOutcome {
  bool applied = false;     // the optimizer stepped (false: skipped on every rank alike)
  std::string skip_reason;  // why not, when !applied
  bool stop = false;        // some rank asked to stop
  double loss_sum = 0;      // the phase's loss, nats, summed over images
  double pixel_sum = 0, aux_sum = 0, kl_sum = 0;  // nats, summed over images
  double images = 0;
  double grad_norm = 0;          // global gradient norm before clipping
  double compute_seconds = 0;    // forward + backward + optimizer, without the all-reduce wait
  double allreduce_seconds = 0;  // waiting for gradient buckets after backward
};

class TrainStep {
 public:
  // `model`, `optimizer` and `ema` must outlive the step; `faults` may be null (real runs).
  TrainStep(model::Agave& model, optim::Adamax& optimizer, model::Ema& ema,
            cluster::Communicator& comm, TrainStepOptions options,
            std::shared_ptr<FaultHooks> faults = nullptr);
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // From now on only `spec`'s parameter groups train and only its terms count; rebuilds the
  // gradient buckets over the parameters that train.
  void set_phase(const PhaseSpec& spec);
  const PhaseSpec& phase() const { return spec_; }
  const std::vector<torch::Tensor>& trainable() const { return trainable_; }

  // One step on this rank's share: `images` uint8 N×C×H×W, `indices` int64 [N] (each image's
  // index in its split: its random numbers derive from it), both on any device.
  StepOutcome run(const torch::Tensor& images, const torch::Tensor& indices, int64_t step);

 private:
  torch::Tensor forward_loss(const torch::Tensor& x, const torch::Tensor& keys,
                             model::LossTerms& terms);
  void apply_update(double grad_norm);

  model::Agave& model_;
  optim::Adamax& optimizer_;
  model::Ema& ema_;
  cluster::Communicator& comm_;
  TrainStepOptions options_;
  std::shared_ptr<FaultHooks> faults_;
  torch::Device device_;
  torch::Tensor zero_;  // float64 0 on the device: a missing term's sum
  PhaseSpec spec_;
  std::vector<torch::Tensor> trainable_;
  std::unique_ptr<cluster::GradientBucketer> bucketer_;
};

}  // namespace agave::trainer
