#include "trainer/phase.h"

#include <gtest/gtest.h>

namespace agave::trainer {
namespace {

constexpr auto kAgave = model::ModelKind::kAgave;

TEST(Phases, ScheduleMapsStepsToPhases) {
  PhaseSchedule s(
      {{PhaseKind::kPretrainVae, 3}, {PhaseKind::kPretrainPixelCnn, 2}, {PhaseKind::kJoint, 4}});
  EXPECT_EQ(s.total_steps(), 9);
  const std::vector<size_t> expected = {0, 0, 0, 1, 1, 2, 2, 2, 2};
  for (int64_t step = 0; step < 9; ++step) EXPECT_EQ(s.index_at(step), expected[step]) << step;
  EXPECT_EQ(s.phase_start(2), 5);
  EXPECT_EQ(s.at(4).kind, PhaseKind::kPretrainPixelCnn);
}

TEST(Phases, EachPhaseTrainsItsPartsOnItsTerms) {
  const auto vae = phase_spec({PhaseKind::kPretrainVae, 1}, LossOptions{8.0}, 0.1, kAgave);
  EXPECT_TRUE(vae.train_vae);
  EXPECT_FALSE(vae.train_pixelcnn);
  EXPECT_FALSE(vae.terms.pixel);
  EXPECT_TRUE(vae.terms.aux && vae.terms.kl);

  const auto pcnn = phase_spec({PhaseKind::kPretrainPixelCnn, 1}, LossOptions{8.0}, 0.1, kAgave);
  EXPECT_FALSE(pcnn.train_vae);
  EXPECT_TRUE(pcnn.train_pixelcnn);
  EXPECT_TRUE(pcnn.terms.pixel);
  EXPECT_FALSE(pcnn.terms.aux || pcnn.terms.kl);

  const auto joint = phase_spec({PhaseKind::kJoint, 1}, LossOptions{8.0}, 0.1, kAgave);
  EXPECT_TRUE(joint.train_vae && joint.train_pixelcnn);
  EXPECT_TRUE(joint.terms.pixel && joint.terms.aux && joint.terms.kl);

  // Appendix C: without the aux term; KL is still paid.
  const auto no_aux = phase_spec({PhaseKind::kNoAux, 1}, LossOptions{8.0}, 0.1, kAgave);
  EXPECT_TRUE(no_aux.train_vae && no_aux.train_pixelcnn);
  EXPECT_TRUE(no_aux.terms.pixel && no_aux.terms.kl);
  EXPECT_FALSE(no_aux.terms.aux);
  // ... and it is Eq. (6): λ = 1 and no free bits, whatever the run's loss settings.
  EXPECT_EQ(no_aux.lambda, 1.0);
  EXPECT_EQ(no_aux.free_bits, 0.0);
  EXPECT_EQ(joint.lambda, 8.0);
  EXPECT_EQ(joint.free_bits, 0.1);
}

// Table 1's baselines train only the half they use, on the terms that are not 0 for them.
TEST(Phases, BaselinesTrainOnlyTheHalfTheyUse) {
  const auto alone =
      phase_spec({PhaseKind::kJoint, 1}, LossOptions{8.0}, 0.1, model::ModelKind::kPixelCnnOnly);
  EXPECT_FALSE(alone.train_vae);
  EXPECT_TRUE(alone.train_pixelcnn);
  EXPECT_EQ(terms_text(alone.terms), "pixel");
  const auto vae =
      phase_spec({PhaseKind::kJoint, 1}, LossOptions{8.0}, 0.1, model::ModelKind::kVaeOnly);
  EXPECT_TRUE(vae.train_vae);
  EXPECT_FALSE(vae.train_pixelcnn);
  EXPECT_EQ(terms_text(vae.terms), "pixel + KL");
  EXPECT_EQ(vae.lambda, 8.0);
}

// What a phase sets itself wins over the kind's defaults.
TEST(Phases, APhaseMaySetItsOwnLambdaFreeBitsAndTerms) {
  PhaseOptions p{PhaseKind::kNoAux, 10};
  p.lambda = 0.5;
  p.free_bits = 0.25;
  p.terms = model::LossSelection{true, true, false};
  const auto s = phase_spec(p, LossOptions{8.0}, 0.1, kAgave);
  EXPECT_EQ(s.lambda, 0.5);
  EXPECT_EQ(s.free_bits, 0.25);
  EXPECT_TRUE(s.terms.pixel && s.terms.aux);
  EXPECT_FALSE(s.terms.kl);
  EXPECT_EQ(terms_text(s.terms), "pixel + aux");
  EXPECT_TRUE(s.train_vae && s.train_pixelcnn);
}

}  // namespace
}  // namespace agave::trainer
