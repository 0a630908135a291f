// The job layer in process (launcher/job.h): what agave_trainer decides before MPI starts, the
// exit-code policy, and the sweep's end. Whole jobs under mpirun are tests/faults/ and
// tests/trainer/.
#include "launcher/job.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "launcher/config_error.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::launcher {
namespace {

using agave::testing::TempDir;
using agave::testing::TinyConfig;
namespace fs = std::filesystem;

// Fashion-MNIST is the default data (Debian's dataset-fashion-mnist): a tiny config on it.
class JobLayer : public ::testing::Test {
 protected:
  JobRequest request(const std::string& extra = "") {
    JobRequest r;
    r.config_file = dir_.write(
        "c.yaml", TinyConfig("r", (dir_.path() / "out").string(), (dir_.path() / "shards").string())
                          .batch_size(4)
                          .yaml() +
                      extra);
    r.dry_run = true;  // no data source needed
    return r;
  }
  TempDir dir_;
};

TEST_F(JobLayer, LoadsEverySweepPointAndPrintsEachResolvedConfig) {
  const auto job = load_job(request("sweep:\n  grid:\n    loss.lambda: [1, 2, 4]\n"));
  EXPECT_EQ(job.sweep.size(), 3u);
  const std::string text = resolved_configs(job.sweep);
  EXPECT_NE(text.find("--- # run lambda=1"), std::string::npos) << text;
  EXPECT_NE(text.find("--- # run lambda=4"), std::string::npos) << text;
  EXPECT_EQ(job.resume.mode, checkpoint::ResumeRequest::Mode::kAuto);
}

TEST_F(JobLayer, ASweepPointOutsideTheSweepIsAConfigErrorNamingItsRange) {
  auto r = request("sweep:\n  grid:\n    loss.lambda: [1, 2]\n");
  r.sweep_point = 2;
  try {
    load_job(r);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 sweep point(s) (0-1)"), std::string::npos)
        << e.what();
  }
  r.sweep_point = 1;
  const auto job = load_job(r);
  ASSERT_EQ(job.sweep.size(), 1u);
  EXPECT_EQ(job.sweep.first().config.loss.lambda, 2);
}

TEST_F(JobLayer, AnEmptyResumeIsRefusedBeforeMpiStarts) {
  auto r = request();
  r.resume = "";
  EXPECT_THROW(load_job(r), std::invalid_argument);
}

TEST_F(JobLayer, ParallelPretrainingNeedsHalvesThatDivideTheBatch) {
  auto r = request();
  const auto job = load_job(r);
  RunSpec spec = job.sweep.first();
  spec.config.train.pretrain = trainer::PretrainSchedule::kParallel;
  spec.config.train.batch_size = 6;
  EXPECT_NO_THROW(require_pretraining_halves(spec, 2));  // 1 rank each, batch 6
  EXPECT_NO_THROW(require_pretraining_halves(spec, 4));  // 2 + 2 ranks, 3 images each
  try {
    require_pretraining_halves(spec, 8);  // 4 + 4 ranks do not divide 6
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("do not divide train.batch_size = 6"), std::string::npos)
        << e.what();
  }
}

TEST(ExitCode, AUserErrorOutranksAFailedRunAndOkOutranksNothing) {
  EXPECT_EQ(worse(ExitCode::kOk, ExitCode::kFailed), ExitCode::kFailed);
  EXPECT_EQ(worse(ExitCode::kUserError, ExitCode::kFailed), ExitCode::kUserError);
  EXPECT_EQ(worse(ExitCode::kFailed, ExitCode::kUserError), ExitCode::kUserError);
  EXPECT_EQ(code(ExitCode::kStopped), 75);
}

TEST(RecordExitCode, WritesTheCodeWhereAgaveExitFileSays) {
  TempDir dir;
  const std::string file = (dir.path() / "exit-code").string();
  ::setenv("AGAVE_EXIT_FILE", file.c_str(), 1);
  record_exit_code(ExitCode::kStopped);
  ::unsetenv("AGAVE_EXIT_FILE");
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "75\n");
  record_exit_code(ExitCode::kFailed);  // unset: nothing written
  std::ifstream again(file);
  std::string still((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(still, "75\n");
}

TEST_F(JobLayer, TheSweepsEndTablesEveryRunAndNamesTheAxesNotSwept) {
  const auto job = load_job(request("sweep:\n  grid:\n    loss.lambda: [1, 2]\n"));
  const Config& first = job.sweep.first().config;
  const fs::path sweep_dir = fs::path(first.run.output_dir) / first.run.name;
  for (const auto& spec : job.sweep.all()) {
    fs::create_directories(spec.output_dir);
    nlohmann::json s = {{"run", spec.name},   {"steps", 4},         {"skipped_steps", 0},
                        {"test_elbo_bpd", 3}, {"test_iw_bpd", 2.9}, {"test_kl_bpd", 0.1},
                        {"seconds", 1.0},     {"ranks", 1}};
    for (const auto& [k, v] : spec.labels) s["labels"][k] = v;
    std::ofstream(fs::path(spec.output_dir) / "summary.json") << s.dump();
  }
  const auto rows = monitoring::read_sweep(sweep_dir.string());
  const auto constants = sweep_constants(first, rows);
  std::vector<std::string> keys;
  for (const auto& [k, v] : constants) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"aux_resolution", "color_bins"}));
  ::testing::internal::CaptureStdout();
  finish_sweep(first);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("sweep summary: " + sweep_dir.string() + "/sweep.csv"), std::string::npos)
      << out;
  std::ifstream csv(sweep_dir / "sweep.csv");
  std::string header, line;
  std::getline(csv, header);
  int runs = 0;
  while (std::getline(csv, line)) ++runs;
  EXPECT_EQ(runs, 2) << header;
}

}  // namespace
}  // namespace agave::launcher
