#pragma once
// Points where the failure tests (tests/faults, tests/trainer) inject faults into a real run:
// a rank whose loss turns non-finite, a rank that dies or throws alone, a stop request, a job
// killed between a checkpoint's shards and its manifest. Real runs have none (nullptr).
#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace agave::trainer {

// How much longer `slow-pictures` makes rank 0's drawing: beyond the fault tests' 3 s timeout.
constexpr int kSlowPicturesSeconds = 8;

class FaultHooks {
 public:
  virtual ~FaultHooks() = default;
  // After the step's loss is computed on `rank`, before backward: may replace the loss, end
  // the process, throw, or request a stop.
  virtual void on_loss(int64_t step, int rank, torch::Tensor& loss) = 0;
  // During a checkpoint save of `step`, after every shard is written, fsynced and hashed and
  // before rank 0 writes the manifest.
  virtual void after_checkpoint_shards(int64_t step) = 0;
  // On `rank` as an evaluation after `step` steps begins (the final one: step = total steps).
  virtual void on_eval(int64_t /*step*/, int /*rank*/) {}
  // On `rank` after each batch of that evaluation, with this rank's images done so far.
  virtual void on_eval_batch(int64_t /*step*/, int /*rank*/, int64_t /*done*/) {}
  // On rank 0 as it starts drawing the picture sheets of the evaluation after `step` steps.
  virtual void on_pictures(int64_t /*step*/, int /*rank*/) {}
};

// The faults named by AGAVE_FAULT="<kind>:<step>:<rank>" (kind = nan | exit | throw | stop |
// sigstop: the rank stops itself with SIGSTOP before backward, as `kill -STOP` would; sigstop-eval:
// the same as the evaluation after <step> steps begins; stop-eval: a stop request after that
// evaluation's first batch, as a signal arriving mid-evaluation would make; sigstop-pictures:
// SIGSTOP as rank 0 starts drawing that evaluation's pictures; slow-pictures: the drawing takes
// kSlowPicturesSeconds longer, as on a slow CPU rank at paper size) and
// AGAVE_FAULT_CHECKPOINT="kill-after-shards:<step>", read once; nullptr when neither is set.
// A malformed value is an error naming the variable (a test that misspells its fault must not
// pass by injecting nothing).
std::shared_ptr<FaultHooks> fault_hooks_from_environment();

}  // namespace agave::trainer
