// The ETA of a step line: each phase at its own cost per step, measured or estimated from the
// networks it trains, plus the evaluations, pictures and checkpoints still to come.
#include "trainer/run_eta.h"

#include <gtest/gtest.h>

namespace agave::trainer {
namespace {

// pretrain_vae, pretrain_pixelcnn and joint, 100 steps each; nothing after the steps.
WorkPlan three_phases() {
  WorkPlan p;
  p.phases = {{PhaseKind::kPretrainVae, 100},
              {PhaseKind::kPretrainPixelCnn, 100},
              {PhaseKind::kJoint, 100}};
  p.global_batch = 64;
  p.eval.every = 0;
  p.eval.sample_images = 0;
  p.test_images = 10000;
  p.final_eval = false;
  return p;
}

TEST(RemainingTime, PhasesNotRunYetCostWhatTheirNetworksCost) {
  MeasuredCosts m;
  m.step_seconds[PhaseKind::kPretrainVae] = 0.01;
  const Eta eta = remaining_time(three_phases(), m, 50);
  // 50 VAE steps, 100 PixelCNN steps at 25 VAE steps each, 100 joint steps of both networks;
  // the old ETA (the current rate for every step left) said 2.5 s.
  EXPECT_NEAR(eta.seconds, 50 * 0.01 + 100 * 0.25 + 100 * 0.26, 1e-9);
  EXPECT_TRUE(eta.estimated);
}

TEST(RemainingTime, MeasuredPhasesReplaceTheEstimate) {
  MeasuredCosts m;
  m.step_seconds[PhaseKind::kPretrainVae] = 0.01;
  m.step_seconds[PhaseKind::kPretrainPixelCnn] = 0.3;
  Eta eta = remaining_time(three_phases(), m, 150);
  EXPECT_NEAR(eta.seconds, 50 * 0.3 + 100 * (0.3 + 0.01), 1e-9);  // joint: both networks
  EXPECT_TRUE(eta.estimated) << "joint has not run";
  m.step_seconds[PhaseKind::kJoint] = 0.35;
  eta = remaining_time(three_phases(), m, 250);
  EXPECT_NEAR(eta.seconds, 50 * 0.35, 1e-9);
  EXPECT_FALSE(eta.estimated);
}

TEST(RemainingTime, AJointPhaseAloneSplitsIntoNetworksByTheRatio) {
  auto plan = three_phases();
  plan.phases.push_back({PhaseKind::kPretrainVae, 10});  // unusual, but it must be costed
  MeasuredCosts m;
  m.step_seconds[PhaseKind::kJoint] = 0.26;  // a run resumed in its joint phase
  const Eta eta = remaining_time(plan, m, 250);
  EXPECT_NEAR(eta.seconds, 50 * 0.26 + 10 * 0.01, 1e-9);
  EXPECT_TRUE(eta.estimated);
}

TEST(RemainingTime, NothingMeasuredIsUnknown) {
  EXPECT_LT(remaining_time(three_phases(), MeasuredCosts(), 0).seconds, 0);
}

TEST(RemainingTime, AModelWithoutAPixelCnnCostsItsVaeInEveryPhase) {
  auto plan = three_phases();
  plan.has_pixelcnn = false;
  plan.phases = {{PhaseKind::kPretrainVae, 10}, {PhaseKind::kJoint, 10}};
  MeasuredCosts m;
  m.step_seconds[PhaseKind::kPretrainVae] = 0.02;
  EXPECT_NEAR(remaining_time(plan, m, 0).seconds, 20 * 0.02, 1e-9);
}

// Periodic evaluations at every multiple of eval.every before the last step (one due at the
// reported step runs after the report), the final one on eval.final_subset images.
TEST(RemainingTime, CountsTheEvaluationsStillToCome) {
  auto plan = three_phases();
  plan.eval.every = 100;
  plan.eval.subset = 1000;
  plan.eval.final_subset = 0;  // the whole split
  plan.eval.importance_samples = 16;
  plan.final_eval = true;
  MeasuredCosts m;  // steps all but free: the evaluations are what counts
  for (auto k : {PhaseKind::kPretrainVae, PhaseKind::kPretrainPixelCnn, PhaseKind::kJoint}) {
    m.step_seconds[k] = 1e-12;
  }
  m.eval_pass_seconds = 0.001;
  const double periodic = 1000 * 17 * 0.001, final = 10000 * 17 * 0.001;
  EXPECT_NEAR(remaining_time(plan, m, 100).seconds, 2 * periodic + final, 1e-6);  // 100, 200
  EXPECT_NEAR(remaining_time(plan, m, 101).seconds, periodic + final, 1e-6);      // 200
  const Eta at_end = remaining_time(plan, m, 300);
  EXPECT_NEAR(at_end.seconds, final, 1e-6) << "the final evaluation is still to come";
  EXPECT_FALSE(at_end.estimated);
}

TEST(EvaluationTime, BeforeOneWasMeasuredItIsAThirdOfATrainingStepPerForwardPass) {
  auto plan = three_phases();
  plan.eval.importance_samples = 16;
  MeasuredCosts m;
  m.step_seconds[PhaseKind::kJoint] = 0.3;
  const Eta e = evaluation_time(plan, m, 1000);
  EXPECT_NEAR(e.seconds, 1000 * 17 * 0.3 / (3 * 64), 1e-9);
  EXPECT_TRUE(e.estimated);
  EXPECT_NEAR(evaluation_time(plan, m, 0).seconds, 10 * e.seconds, 1e-9) << "0: the whole split";
  EXPECT_NEAR(evaluation_time(plan, m, 50000).seconds, 10 * e.seconds, 1e-9) << "at most the split";
}

TEST(EvaluationTime, PictureSheetsCountOnceMeasured) {
  auto plan = three_phases();
  plan.eval.importance_samples = 1;
  plan.eval.sample_images = 8;
  MeasuredCosts m;
  m.eval_pass_seconds = 0.01;
  Eta e = evaluation_time(plan, m, 100);
  EXPECT_NEAR(e.seconds, 100 * 2 * 0.01, 1e-9);
  EXPECT_TRUE(e.estimated) << "pictures not measured yet";
  m.pictures_seconds = 7;
  e = evaluation_time(plan, m, 100);
  EXPECT_NEAR(e.seconds, 2 + 7, 1e-9);
  EXPECT_FALSE(e.estimated);
}

TEST(RemainingTime, CountsTheCheckpointsStillToCome) {
  auto plan = three_phases();
  plan.phases = {{PhaseKind::kJoint, 250}};
  plan.checkpoint_every = 100;
  MeasuredCosts m;
  m.step_seconds[PhaseKind::kJoint] = 1e-12;
  m.checkpoint_seconds = 2;
  EXPECT_NEAR(remaining_time(plan, m, 0).seconds, 3 * 2, 1e-6);    // 100, 200 and the last, 250
  EXPECT_NEAR(remaining_time(plan, m, 200).seconds, 2 * 2, 1e-6);  // 200 (after the report), 250
  EXPECT_NEAR(remaining_time(plan, m, 250).seconds, 2, 1e-6);
  plan.checkpoint_every = 0;
  EXPECT_NEAR(remaining_time(plan, m, 10).seconds, 2, 1e-6);  // the last step's only
}

}  // namespace
}  // namespace agave::trainer
