#pragma once
// One training run on the ranks of one communicator, a short loop over named parts
// (docs/architecture.md): Resume (where the run starts), TrainStep (one data-parallel step),
// StepReport (what it reports), checkpoint::TrainingState (what a checkpoint holds), evaluation and
// picture sheets. A stop request (trainer/stop_request.h) ends it after a checkpoint.
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "checkpoint/resume.h"
#include "cluster/communicator.h"
#include "cluster/options.h"
#include "data/options.h"
#include "model/options.h"
#include "monitoring/options.h"
#include "trainer/config_history.h"
#include "trainer/evaluator.h"
#include "trainer/fault_hooks.h"
#include "trainer/options.h"

namespace agave::trainer {

// The folders of a parallel pretraining's two halves (trainer/parallel_pretraining.h), each
// holding step-* checkpoints: where a run continues when it has no checkpoint of its own.
struct PretrainedHalves {
  std::string vae_checkpoints;
  std::string pixelcnn_checkpoints;
};

struct TrainerSetup {
  std::string run_name;
  std::string output_dir;  // created by the run's rank 0
  uint64_t seed = 1;
  std::map<std::string, std::string> labels;  // sweep values, e.g. lambda=12
  std::string resolved_config;                // YAML, saved beside the results
  // At resume: the changes from the run's recorded config (config.yaml, else the checkpoint's)
  // to resolved_config for a run continuing at `step`. Set by the launcher, the side that reads
  // YAML; null: configs are not compared (tests of the trainer alone).
  std::function<ConfigDrift(const std::string& recorded, const std::string& current, int64_t step)>
      config_drift;
  // --allow-config-change: continue a run whose config changes what it trained (recorded in
  // config_history.jsonl) instead of refusing it (trainer/config_history.h).
  bool allow_config_change = false;
  checkpoint::ResumeRequest resume;
  // A half of a parallel pretraining: no evaluation (the PixelCNN half's model is not one the
  // test bound means anything for); its summary.json records only its last checkpoint.
  bool pretrain_half = false;
  // A run whose pretraining ran in parallel: a fresh start merges the halves' final checkpoints
  // and continues at the step after both pretraining phases.
  std::optional<PretrainedHalves> merge_from;
  std::shared_ptr<FaultHooks> faults;  // the failure tests' injection points; null in real runs
  int world_rank = 0;                  // this process's rank in the whole job (metrics label)
  torch::Device device = torch::kCPU;  // cuda:<local rank> on GPU nodes
  data::DataOptions data;
  model::AgaveOptions model;
  LossOptions loss;
  TrainOptions train;
  EvalOptions eval;
  CheckpointOptions checkpoint;
  monitoring::MonitoringOptions monitoring;
  cluster::ClusterOptions cluster;
};

struct TrainResult {
  int64_t steps = 0;          // optimizer steps taken (skipped ones not counted)
  int64_t skipped_steps = 0;  // steps dropped because a loss or gradient was not finite
  double last_loss_bpd = 0;   // training loss (phase terms) of the last logged window
  EvalResult eval;
  bool stopped = false;           // a stop request ended training early, after a checkpoint
  bool already_complete = false;  // the newest checkpoint was already at the last step
  std::string resumed_from;       // checkpoint folder, empty for a fresh start
};

// A step whose loss or gradients were non-finite on any rank `max_nonfinite_steps` times in a
// row: training cannot recover from here.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a run's checkpoints go: checkpoint.dir, or <output_dir>/checkpoints.
std::string checkpoint_root(const TrainerSetup& setup);

class Trainer {
 public:
  // `comm` holds exactly the ranks of this run. The data shards must exist (ensure_shards).
  Trainer(TrainerSetup setup, cluster::Communicator& comm);
  TrainResult run();

 private:
  TrainerSetup setup_;
  cluster::Communicator& comm_;
};

}  // namespace agave::trainer
