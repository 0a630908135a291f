// train.pretrain: parallel for real (trainer/parallel_pretraining.h): agave_trainer under
// mpirun on Debian's Fashion-MNIST, each half checked against the network pretrained alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"
#include "tests/common/trainer_suite.h"

namespace agave::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kVaeSteps = 3, kPixelCnnSteps = 4, kJointSteps = 2;

class ParallelPretraining : public TrainerSuite {
 protected:
  // Run `name` with these phases; dropout, so that the per-example random streams matter.
  std::string config(const std::string& name, std::vector<TinyPhase> phases,
                     const std::string& pretrain = "") {
    TinyConfig c(name, out_.path().string() + "/runs", shards());
    c.phases(std::move(phases)).dropout(0.5).eval(2, 4, 4, 0).checkpoint(1, 20).log_every(1);
    if (!pretrain.empty()) c.pretrain(pretrain);
    return out_.write(name + ".yaml", c.yaml());
  }
  std::string parallel(const std::string& name = "par") {
    return config(name,
                  {{"pretrain_vae", kVaeSteps},
                   {"pretrain_pixelcnn", kPixelCnnSteps},
                   {"joint", kJointSteps}},
                  "parallel");
  }
  fs::path run_dir(const std::string& name) const { return out_.path() / "runs" / name; }
  static fs::path step_dir(const fs::path& checkpoints, int step) {
    char name[32];
    std::snprintf(name, sizeof name, "step-%08d", step);
    return checkpoints / name;
  }

  // How many tensors named `prefix`… differ between two checkpoints (-1: none compared).
  static int differing(const fs::path& a, const fs::path& b, const std::string& prefix = "") {
    const auto [compared, differ] = changed_tensors(a, b, prefix);
    return compared > 0 ? differ : -1;
  }

  TempDir out_;
};

TEST_F(ParallelPretraining, EachHalfIsBitIdenticalToItsNetworkPretrainedAlone) {
  const auto par = sh(mpirun(2) + kTrainer + " " + parallel());
  ASSERT_EQ(par.code, 0) << par.output;
  const auto vae = sh(mpirun(1) + kTrainer + " " + config("vae", {{"pretrain_vae", kVaeSteps}}));
  ASSERT_EQ(vae.code, 0) << vae.output;
  const auto pixelcnn =
      sh(mpirun(1) + kTrainer + " " +
         config("pixelcnn", {{"pretrain_pixelcnn", kPixelCnnSteps, "conditioned: false"}}));
  ASSERT_EQ(pixelcnn.code, 0) << pixelcnn.output;

  const auto vae_half = step_dir(run_dir("par") / "pretrain_vae/checkpoints", kVaeSteps);
  const auto pixelcnn_half =
      step_dir(run_dir("par") / "pretrain_pixelcnn/checkpoints", kPixelCnnSteps);
  // Every tensor: weights, EMA shadow, Adamax moments and step counts.
  EXPECT_EQ(differing(vae_half, step_dir(run_dir("vae") / "checkpoints", kVaeSteps)), 0);
  EXPECT_EQ(differing(pixelcnn_half, step_dir(run_dir("pixelcnn") / "checkpoints", kPixelCnnSteps)),
            0);
  // The halves started from the same weights; each trained only its own network, and the
  // PixelCNN's conditioning stream waited untouched for f(z).
  EXPECT_GT(differing(vae_half, pixelcnn_half, "model/vae."), 0);
  EXPECT_GT(differing(vae_half, pixelcnn_half, "model/pixelcnn."), 0);
  EXPECT_EQ(differing(vae_half, pixelcnn_half, "model/pixelcnn.cond_stem"), 0);
  EXPECT_EQ(differing(vae_half, pixelcnn_half, "optim/pixelcnn.cond_stem"), 0);

  // Then both ranks train the full model from the step after both pretraining phases.
  const int total = kVaeSteps + kPixelCnnSteps + kJointSteps;
  EXPECT_NE(par.output.find("merged the pretrained VAE of " + vae_half.string() +
                            " and PixelCNN of " + pixelcnn_half.string() + ": continuing at step " +
                            std::to_string(kVaeSteps + kPixelCnnSteps)),
            std::string::npos)
      << par.output;
  EXPECT_NE(par.output.find("phase joint: steps 7-8"), std::string::npos) << par.output;
  EXPECT_EQ(count_of(par.output, "phase pretrain_pixelcnn:"), 1) << par.output;
  EXPECT_TRUE(fs::exists(run_dir("par") / "summary.json"));
  const auto final_dir = step_dir(run_dir("par") / "checkpoints", total);
  ASSERT_TRUE(fs::exists(final_dir / "manifest.json"));
  EXPECT_FALSE(fs::exists(step_dir(run_dir("par") / "checkpoints", kVaeSteps)))
      << "the run's own checkpoints start after the merge";
}

TEST_F(ParallelPretraining, OneRankTrainsBothHalvesInTurn) {
  const auto r = sh(mpirun(1) + kTrainer + " " + parallel());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LT(r.output.find("phase pretrain_vae"), r.output.find("phase pretrain_pixelcnn"))
      << r.output;
  EXPECT_NE(r.output.find("merged the pretrained VAE"), std::string::npos) << r.output;
  // Again: the run is complete, and neither half trains again.
  const auto again = sh(mpirun(1) + kTrainer + " " + parallel());
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("already complete"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("phase pretrain"), std::string::npos) << again.output;
  // Ended after both halves but before the merged run's first checkpoint: the halves are
  // complete and merge again.
  fs::remove_all(run_dir("par") / "checkpoints");
  fs::remove(run_dir("par") / "summary.json");
  const auto merge_again = sh(mpirun(1) + kTrainer + " " + parallel());
  ASSERT_EQ(merge_again.code, 0) << merge_again.output;
  EXPECT_EQ(count_of(merge_again.output, "already complete"), 2) << merge_again.output;
  EXPECT_NE(merge_again.output.find("merged the pretrained VAE"), std::string::npos)
      << merge_again.output;
  EXPECT_EQ(merge_again.output.find("phase pretrain"), std::string::npos) << merge_again.output;
}

TEST_F(ParallelPretraining, AStopDuringPretrainingResumesEachHalfFromItsOwnCheckpoint) {
  const std::string cfg = parallel();
  // Rank 0 of each half (job ranks 0 and 1) asks to stop at its step 1; the job relays the
  // first request to every rank.
  const auto stopped = sh("AGAVE_FAULT=stop:1:0 " + mpirun(2) + kTrainer + " " + cfg);
  ASSERT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_FALSE(fs::exists(run_dir("par") / "checkpoints")) << stopped.output;
  std::vector<fs::path> stopped_halves;  // their checkpoint folders
  for (const std::string half : {"pretrain_vae", "pretrain_pixelcnn"}) {
    const auto checkpoints = run_dir("par") / half / "checkpoints";
    if (fs::exists(checkpoints / "latest")) stopped_halves.push_back(checkpoints);
  }
  const auto resumed = sh(mpirun(2) + kTrainer + " " + cfg);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  // A half stops at its own step 1 or earlier, when the other half's request reaches it first
  // (before its first step it has nothing to checkpoint and starts afresh). Each half that has a
  // checkpoint resumes from it, and one of them at least has one.
  EXPECT_GE(stopped_halves.size(), 1u) << stopped.output;
  for (const auto& checkpoints : stopped_halves) {
    EXPECT_NE(resumed.output.find("resumed from " + checkpoints.string() + "/step-"),
              std::string::npos)
        << resumed.output;
  }
  // The same weights as a job never stopped.
  const auto whole = sh(mpirun(2) + kTrainer + " " + parallel("whole"));
  ASSERT_EQ(whole.code, 0) << whole.output;
  const int total = kVaeSteps + kPixelCnnSteps + kJointSteps;
  EXPECT_EQ(differing(step_dir(run_dir("par") / "checkpoints", total),
                      step_dir(run_dir("whole") / "checkpoints", total), "model/"),
            0);
}

TEST_F(ParallelPretraining, DryRunSaysWhichRanksPretrainWhat) {
  const auto r = sh(mpirun(2) + kTrainer + " --dry-run " + parallel());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("run par: rank 0 pretrains the VAE (3 steps) while rank 1 pretrains "
                          "the PixelCNN without f(z) (4 steps); then all 2 ranks train the full "
                          "model from step 7"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("runs: par (pretrain_vae first)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("runs: par (pretrain_pixelcnn first)"), std::string::npos) << r.output;
  const auto one = sh(mpirun(1) + kTrainer + " --dry-run " + parallel());
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("rank 0 pretrains the VAE (3 steps), then rank 0 pretrains the "
                            "PixelCNN without f(z) (4 steps); then it trains the full model"),
            std::string::npos)
      << one.output;
  EXPECT_NE(one.output.find("runs: par (pretrain_vae then pretrain_pixelcnn first)"),
            std::string::npos)
      << one.output;
  EXPECT_FALSE(fs::exists(run_dir("par")));
}

TEST_F(ParallelPretraining, PretrainVaeRanksSetsTheSplit) {
  const std::string cfg = parallel();
  const auto r = sh(mpirun(4) + kTrainer + " --dry-run " + cfg +
                    " --set train.pretrain_vae_ranks=1 --set train.batch_size=12");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("run par: rank 0 pretrains the VAE (3 steps) while ranks 1-3 pretrain "
                          "the PixelCNN without f(z) (4 steps); then all 4 ranks train"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(count_of(r.output, "runs: par (pretrain_pixelcnn first)"), 3) << r.output;
  EXPECT_EQ(count_of(r.output, "runs: par (pretrain_vae first)"), 1) << r.output;
  // The PixelCNN needs a rank, and each half must divide the global batch of 8.
  const auto none =
      sh(mpirun(2) + kTrainer + " --dry-run " + cfg + " --set train.pretrain_vae_ranks=2");
  EXPECT_EQ(none.code, 2) << none.output;
  EXPECT_NE(none.output.find("train.pretrain_vae_ranks = 2 leaves none of the run's 2 ranks"),
            std::string::npos)
      << none.output;
  const auto uneven =
      sh(mpirun(4) + kTrainer + " --dry-run " + cfg + " --set train.pretrain_vae_ranks=3");
  EXPECT_EQ(uneven.code, 2) << uneven.output;
  EXPECT_NE(uneven.output.find("pretrain_vae 3 of the run's 4 ranks, which do not divide "
                               "train.batch_size = 8"),
            std::string::npos)
      << uneven.output;
}

TEST_F(ParallelPretraining, NeedsBothPretrainingPhasesFirst) {
  const auto r = sh(mpirun(1) + kTrainer + " --dry-run " +
                    config("bad", {{"pretrain_vae", 2}, {"joint", 2}}, "parallel"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("train.pretrain"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[pretrain_vae, joint]"), std::string::npos) << r.output;
  const auto cond = sh(mpirun(1) + kTrainer + " --dry-run " +
                       config("bad2", {{"pretrain_vae", 2, "conditioned: false"}}));
  EXPECT_EQ(cond.code, 2) << cond.output;
  EXPECT_NE(cond.output.find("conditioned"), std::string::npos) << cond.output;
}

}  // namespace
}  // namespace agave::testing
