// agave_eval as users run it: a tiny model trained by agave_trainer, then evaluated from its
// checkpoint on one and two ranks (the numbers must agree), with K = 1 (the IW bound is then
// the ELBO), and with unusable arguments or checkpoints (one line, exit code 2).
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "analysis/comparison.h"
#include "analysis/paired_stats.h"
#include "analysis/per_image_file.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::testing {
namespace {

namespace fs = std::filesystem;

class Eval : public ::testing::Test {
 protected:
  // One tiny model for every test: trained once, its checkpoint only read afterwards.
  static void SetUpTestSuite() {
    if (!have_fashion_mnist()) return;
    dir_ = new TempDir();
    const std::string dir = dir_->path().string();
    const auto cfg = dir_->write("tiny.yaml", TinyConfig("tiny", dir + "/runs", dir + "/fmnist")
                                                  .batch_size(16)
                                                  .phases({{"pretrain_vae", 4}, {"joint", 6}})
                                                  .ema_decay(0.5)
                                                  .eval(1, 4, 8, 0)
                                                  .checkpoint(0, 1)
                                                  .log_every(5)
                                                  .threads_per_rank(1)
                                                  .yaml());
    const auto r = sh(mpirun(1) + kTrainer + " " + cfg);
    trained_ = new Result(r);
  }
  static void TearDownTestSuite() {
    delete trained_;
    delete dir_;
    trained_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << kNoFashionMnist;
    ASSERT_EQ(trained_->code, 0) << trained_->output;
  }
  static std::string run_dir() { return (dir_->path() / "runs/tiny").string(); }
  static std::string checkpoint() { return run_dir() + "/checkpoints/step-00000010"; }

  // Runs agave_eval on `np` ranks; returns its JSON results (empty on failure).
  nlohmann::json eval(int np, const std::string& args) {
    const std::string out = (out_.path() / ("r" + std::to_string(runs_++) + ".json")).string();
    last_ = sh(mpirun(np) + kEval + " --threads 1 --json " + out + " " + args);
    if (last_.code != 0 || !fs::exists(out)) return {};
    std::ifstream in(out);
    return nlohmann::json::parse(in);
  }

  static TempDir* dir_;
  static Result* trained_;
  TempDir out_;
  Result last_;
  int runs_ = 0;
};
TempDir* Eval::dir_ = nullptr;
Result* Eval::trained_ = nullptr;

TEST_F(Eval, OneAndTwoRanksAgreeOnTheSameImages) {
  const std::string args = "--checkpoint " + run_dir() + " --samples 8 --limit 61 --batch 16";
  const auto one = eval(1, args);
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("test ELBO"), std::string::npos) << last_.output;
  EXPECT_NE(last_.output.find("test IW bound K=8"), std::string::npos) << last_.output;
  EXPECT_NE(last_.output.find("test latent use    "), std::string::npos) << last_.output;
  EXPECT_NE(last_.output.find(" latent channels active, KL per layer "), std::string::npos)
      << last_.output;
  EXPECT_NE(last_.output.find(checkpoint()), std::string::npos) << last_.output;  // the newest
  const auto two = eval(2, args);
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_EQ(count_of(last_.output, "test ELBO"), 1u) << last_.output;  // rank 0 prints
  for (const auto* r : {&one, &two}) {
    EXPECT_EQ((*r)["images"], 61);  // 31 + 30 on two ranks: every image once
    EXPECT_EQ((*r)["importance_samples"], 8);
    EXPECT_EQ((*r)["step"], 10);
    EXPECT_TRUE((*r)["ema"].get<bool>());
    const double elbo = (*r)["elbo_bpd"], iw = (*r)["iw_bpd"], kl = (*r)["kl_bpd"];
    EXPECT_GT(elbo, 0.5);
    EXPECT_LT(elbo, 9.0);  // a trained-for-10-steps model, far below 8 bits/dim's uniform+KL
    EXPECT_GT((*r)["elbo_bpd_stderr"].get<double>(), 0.0);
    EXPECT_GT((*r)["iw_bpd_stderr"].get<double>(), 0.0);
    EXPECT_GT(kl, -0.05);
    EXPECT_LE(iw, elbo + 0.01);  // K = 8 is a tighter bound than K = 1
    // Latent use: every image paired, also image 31, alone in rank 1's first batch (16..31).
    EXPECT_EQ((*r)["latent_use_images"], 61);
    EXPECT_NEAR((*r)["pixel_shuffled_bpd"].get<double>() - (*r)["pixel_bpd"].get<double>(),
                (*r)["latent_use_bpd"].get<double>(), 1e-9);
    EXPECT_NEAR((*r)["pixel_bpd"].get<double>() + kl, elbo, 1e-6);
    EXPECT_EQ((*r)["kl_bpd_layers"].size(), 1u);
    EXPECT_EQ((*r)["latent_channels"], 2);
  }
  // The same images: only z ~ q differs between the runs (~0.001 bits/dim here), far less than
  // the spread over images that the standard errors measure. Other images (e.g. rank 1 taking
  // its share from the second half of the split) move the means by ~0.07 = 0.45 stderr.
  const double tol_elbo =
      0.1 * std::max(one["elbo_bpd_stderr"].get<double>(), two["elbo_bpd_stderr"].get<double>());
  const double tol_iw =
      0.1 * std::max(one["iw_bpd_stderr"].get<double>(), two["iw_bpd_stderr"].get<double>());
  EXPECT_NEAR(one["elbo_bpd"].get<double>(), two["elbo_bpd"].get<double>(), tol_elbo);
  EXPECT_NEAR(one["iw_bpd"].get<double>(), two["iw_bpd"].get<double>(), tol_iw);
}

// --per-image: a row per image in test-split order, each once, whatever the ranks (two: rank 1's
// first batch holds image 31 alone, paired with the next batch's z; three: other shares); their
// means are the summary's, and what they depend on is above them.
TEST_F(Eval, PerImageRowsAreEveryImageOnceInTestSetOrder) {
  for (int np : {2, 3}) {
    const std::string rows = (out_.path() / ("rows" + std::to_string(np) + ".csv")).string();
    const auto r = eval(np, "--checkpoint " + run_dir() + " --samples 4 --limit 61 --batch 16 " +
                                "--per-image " + rows);
    ASSERT_FALSE(r.empty()) << last_.output;
    const auto f = analysis::read_per_image(rows);
    ASSERT_EQ(f.rows(), 61u) << np << " ranks";
    for (size_t i = 0; i < f.rows(); ++i) EXPECT_EQ(f.index[i], static_cast<int64_t>(i));
    EXPECT_EQ(f.meta.step, 10);
    EXPECT_EQ(f.meta.importance_samples, 4);
    EXPECT_EQ(f.meta.weights, "ema");
    EXPECT_EQ(f.meta.checkpoint, checkpoint());
    EXPECT_EQ(f.meta.test_split, 10000);  // Fashion-MNIST's test split
    for (const char* column : {"elbo_bpd", "iw_bpd", "pixel_bpd", "pixel_shuffled_bpd",
                               "latent_use_bpd", "kl_bpd", "aux_bpd", "vae_bpd"}) {
      const auto m = analysis::mean_error(f.column(column));
      EXPECT_EQ(m.n, 61) << column << ": every image has one";
      EXPECT_NEAR(m.mean, r[column].get<double>(), 1e-6) << column << ", " << np << " ranks";
    }
    EXPECT_NEAR(analysis::mean_error(f.column("elbo_bpd")).stderr_of_mean,
                r["elbo_bpd_stderr"].get<double>(), 1e-6);
  }
  // The two files pair: the same images, K and weights.
  EXPECT_NO_THROW(analysis::check_pairable(analysis::read_per_image(out_ / "rows2.csv"),
                                           analysis::read_per_image(out_ / "rows3.csv"),
                                           {"elbo_bpd"}));
  // A folder that is not there is refused before the evaluation.
  const auto missing = (out_.path() / "nowhere" / "rows.csv").string();
  const auto refused = sh(kEval + " --checkpoint " + checkpoint() + " --per-image " + missing);
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_EQ(
      count_of(refused.output, "agave_eval: error: --per-image " + missing + ": no such folder"),
      1u)
      << refused.output;
}

TEST_F(Eval, OneSampleIsTheElbo) {
  const auto r = eval(2, "--checkpoint " + checkpoint() + " --samples 1 --limit 32");
  ASSERT_EQ(last_.code, 0) << last_.output;
  ASSERT_EQ(r["images"], 32);
  // Two independent single-sample estimates of the same images' ELBO (they differ by ~0.002
  // bits/dim here, the images' spread is ~0.2).
  EXPECT_NEAR(r["iw_bpd"].get<double>(), r["elbo_bpd"].get<double>(),
              0.05 * r["elbo_bpd_stderr"].get<double>());
}

TEST_F(Eval, EmaIsTheDefaultAndNoEmaUsesTheTrainedWeights) {
  const std::string args = "--checkpoint " + checkpoint() + " --samples 1 --limit 16";
  const auto ema = eval(1, args);
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("EMA weights"), std::string::npos) << last_.output;
  const auto trained = eval(1, args + " --no-ema");
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("trained weights"), std::string::npos) << last_.output;
  EXPECT_FALSE(trained["ema"].get<bool>());
  EXPECT_NE(ema["elbo_bpd"].get<double>(), trained["elbo_bpd"].get<double>());
}

// Without --samples, K is the checkpoint config's eval.importance_samples (1 here, where the
// built-in default is 150).
TEST_F(Eval, SamplesDefaultToTheCheckpointsConfig) {
  const auto r = eval(1, "--checkpoint " + checkpoint() + " --limit 8");
  ASSERT_FALSE(r.empty()) << last_.output;
  EXPECT_EQ(r["importance_samples"], 1) << last_.output;
  EXPECT_NE(last_.output.find("K=1, cpu"), std::string::npos) << last_.output;
  EXPECT_NE(last_.output.find(" at K=1 importance samples (the config's "
                              "eval.importance_samples; --samples K), "),
            std::string::npos)
      << last_.output;
}

// Before minutes go into it, agave_eval says what it evaluates: the images (how many of the
// test split), K, the weights and their step; after the first batch, how long it should take.
// Its progress counts from the evaluation's start: a share of one batch said "took 0.0 s".
TEST_F(Eval, SaysWhatItEvaluatesAndHowLongItTakes) {
  const auto r = eval(1, "--checkpoint " + run_dir() + " --samples 32 --limit 64 --batch 64");
  ASSERT_FALSE(r.empty()) << last_.output;
  const auto& out = last_.output;
  EXPECT_TRUE(std::regex_search(
      out, std::regex(R"(\nagave_eval: evaluating 64 test images \(the first 64 of the test )"
                      R"(split's [1-9]\d*, --limit\) at K=32 importance samples \(--samples\), )"
                      R"(EMA weights of step 10\n)")))
      << out;
  EXPECT_TRUE(std::regex_search(
      out, std::regex(R"(\nagave_eval: about [0-9][^\n]* for 64 images \([0-9.]+ images/s on )"
                      R"(the first batch\)\n)")))
      << out;
  std::smatch took, measured;
  ASSERT_TRUE(std::regex_search(
      out, took, std::regex(R"(\neval 64/64 \(100%\) [0-9.]+ img/s, took ([0-9.]+) s\n)")))
      << out;
  ASSERT_TRUE(std::regex_search(out, measured, std::regex(R"(\n64 images in ([0-9.]+) s: )")))
      << out;
  EXPECT_NEAR(std::stod(took[1]), std::stod(measured[1]), 0.1 + 0.2 * std::stod(measured[1]))
      << out;
  EXPECT_LT(out.find("agave_eval: evaluating"), out.find("test ELBO")) << out;
}

// --device: cpu, or CUDA where this build and node have it; otherwise one line, exit 2.
TEST_F(Eval, DeviceIsCheckedBeforeAnythingRuns) {
  auto r = eval(1, "--checkpoint " + checkpoint() + " --samples 2 --limit 8 --device cpu");
  EXPECT_FALSE(r.empty()) << last_.output;
  const auto bad = sh(kEval + " --checkpoint " + checkpoint() + " --device gpu");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_EQ(bad.output, "agave_eval: error: --device gpu: expected cpu, cuda or cuda:N\n");
  if (torch::cuda::is_available()) {
    r = eval(1, "--checkpoint " + checkpoint() + " --samples 2 --limit 8 --device cuda");
    ASSERT_FALSE(r.empty()) << last_.output;
    EXPECT_NE(last_.output.find(", cuda:0,"), std::string::npos) << last_.output;
    const auto too_far = sh(kEval + " --checkpoint " + checkpoint() + " --device cuda:4096");
    EXPECT_EQ(too_far.code, 2) << too_far.output;
    EXPECT_NE(too_far.output.find("GPU(s)"), std::string::npos) << too_far.output;
  } else {
    const auto none = sh(mpirun(2) + kEval + " --checkpoint " + checkpoint() + " --device cuda");
    EXPECT_EQ(none.code, 2) << none.output;
    EXPECT_EQ(count_of(none.output, "agave_eval: error: --device cuda: CUDA is not available"), 1u)
        << none.output;
  }
}

TEST_F(Eval, UnusableArgumentsOrCheckpointsExitTwoWithOneLine) {
  const std::string missing = (out_.path() / "nowhere").string();
  auto r = sh(mpirun(2) + kEval + " --checkpoint " + missing + " --samples 4");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(count_of(r.output, "agave_eval: error: --checkpoint " + missing + ": no such folder"),
            1u)
      << r.output;

  r = sh(kEval + " --checkpoint " + out_.path().string() + " --samples 4");  // empty folder
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("not a complete checkpoint"), std::string::npos) << r.output;

  r = sh(kEval + " --checkpoint " + checkpoint() + " --samples 0");
  EXPECT_EQ(r.code, 2) << r.output;
  r = sh(kEval + " --samples 4");
  EXPECT_EQ(r.code, 2) << r.output;

  r = sh(kEval + " --checkpoint " + checkpoint() + " --samples 4 --shards " + missing);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("no test split"), std::string::npos) << r.output;

  // A corrupt shard: found by its checksum before any number is printed.
  const fs::path copy = out_.path() / "copy";
  fs::copy(checkpoint(), copy);
  const auto shard = copy / "shard-00000-of-00001.h5";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(shard) / 2));
    f.put('\x5a').put('\xa5');
  }
  r = sh(mpirun(2) + kEval + " --threads 1 --checkpoint " + copy.string() + " --samples 4 " +
         "--shards " + dir_->path().string() + "/fmnist");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(count_of(r.output, "SHA-256 mismatch"), 1u) << r.output;
  EXPECT_EQ(r.output.find("test ELBO"), std::string::npos) << r.output;
}

// --json must write or fail: a missing folder is refused before the evaluation (exit 2), a full
// disk after it (exit 1, one line); both exited 0 without a file before.
TEST_F(Eval, JsonThatCannotBeWrittenIsAnError) {
  const std::string missing = (out_.path() / "nowhere" / "r.json").string();
  auto r = sh(kEval + " --threads 1 --checkpoint " + checkpoint() + " --samples 2 --limit 4" +
              " --json " + missing);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(count_of(r.output, "agave_eval: error: --json " + missing + ": no such folder"), 1u)
      << r.output;
  EXPECT_EQ(r.output.find("test ELBO"), std::string::npos) << r.output;
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  r = sh(kEval + " --threads 1 --checkpoint " + checkpoint() + " --samples 2 --limit 4" +
         " --json /dev/full");
  EXPECT_EQ(r.code, 1) << r.output;
  // Once MPI is up, every executable's error line names the rank (launcher/entry_point.h).
  EXPECT_EQ(
      count_of(r.output, "agave_eval: error: rank 0: --json /dev/full: cannot write the results"),
      1u)
      << r.output;
  EXPECT_TRUE(fs::exists("/dev/full") && !fs::is_regular_file("/dev/full"));
}

}  // namespace
}  // namespace agave::testing
