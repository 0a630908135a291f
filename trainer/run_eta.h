#pragma once
// The time a run has left: the steps left in each phase at that phase's own cost per step (a
// PixelCNN or joint step costs ~25 VAE pretraining steps on the quickstart), and the
// evaluations, picture sheets and checkpoints still to come. A cost is measured once the run
// has done it; until then it is estimated, and the ETA says so ("ETA ~…"):
//   - a phase kind not run yet: from the networks it trains (pretrain_vae the VAE,
//   pretrain_pixelcnn
//     the PixelCNN, joint and no_aux both), each network's cost per step taken from the phases
//     measured, or from the other one's by kPixelCnnPerVaeStep;
//   - an evaluation not measured yet: (K + 1) forward passes per test image (K importance
//     samples and the ELBO), a forward pass a third of a training step of the whole model
//     (forward and backward ≈ 3 forwards) per image of the global batch;
//   - picture sheets and checkpoints: counted once one was measured.
// Pure: no clock, no MPI (tests/trainer/run_eta_test.cpp).
#include <cstdint>
#include <map>
#include <vector>

#include "trainer/options.h"

namespace agave::trainer {

// What the run has to do, fixed at its start.
struct WorkPlan {
  std::vector<PhaseOptions> phases;
  bool has_latents = true;   // the model kind has a VAE (model/options.h)
  bool has_pixelcnn = true;  // and a PixelCNN
  int64_t global_batch = 1;
  EvalOptions eval;
  int64_t test_images = 0;  // the test split's size
  bool final_eval = true;   // false: a pretraining half evaluates nothing
  int64_t checkpoint_every = 0;
};

// Wall times the run has measured; 0: not yet.
struct MeasuredCosts {
  std::map<PhaseKind, double> step_seconds;  // a training step, per phase kind
  double eval_pass_seconds = 0;              // an evaluation's wall time per image × (K + 1)
  double pictures_seconds = 0;               // the picture sheets of one evaluation
  double checkpoint_seconds = 0;
};

struct Eta {
  double seconds = -1;     // < 0: unknown (nothing measured yet)
  bool estimated = false;  // a part of it not measured yet
};

// A PixelCNN step per VAE step where only one of them was measured (the quickstart on 2 CPU
// cores: about 25, issue 30).
inline constexpr double kPixelCnnPerVaeStep = 25.0;

// After `steps_done` steps, at a step report: the steps left, the periodic evaluations due at
// steps in [steps_done, last step), the final evaluation and the checkpoints due at steps in
// [steps_done, last step] (those of `steps_done` itself run after the report).
Eta remaining_time(const WorkPlan& plan, const MeasuredCosts& measured, int64_t steps_done);

// One evaluation of `subset` test images (0: the whole split), with its picture sheets.
Eta evaluation_time(const WorkPlan& plan, const MeasuredCosts& measured, int64_t subset);

}  // namespace agave::trainer
