// How agave_trainer jobs fail, tried as an operator would (issue 13): a rank stopped with SIGSTOP
// (in a step, in backward's bucketed all-reduce, in the final evaluation) must end the job
// within seconds naming the stopped rank; a stop signal to one rank of a sweep stops every
// group with a checkpoint; two jobs on one run are refused; a run is complete only with its
// summary.json. Real mpirun jobs of the tiny Fashion-MNIST model, real signals.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/common/background_job.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"
#include "tests/faults/tiny_jobs.h"

namespace agave::testing {
namespace {

namespace fs = std::filesystem;

// What a stalled job may take to end: the 3 s timeout, up to 2 s of probing, the abort.
constexpr double kEndsWithin = 15;

using NoHang = TinyJobs;

// The one line a timed-out rank prints: the collective, the step, and the stopped rank.
void expect_timeout_line(const std::string& log, const std::string& collective,
                         const std::string& step) {
  EXPECT_NE(log.find("collective timeout: " + collective), std::string::npos) << log;
  EXPECT_NE(log.find(step), std::string::npos) << log;
  EXPECT_NE(log.find("did not arrive: rank 1 ("), std::string::npos) << log;
  EXPECT_NE(log.find("no answer: stopped or hung"), std::string::npos) << log;
}

using CollectiveTimeout = NoHang;

// kill -STOP of rank 1 from outside, wherever it is: rank 0 gives up after the 3 s timeout,
// names rank 1, and the job ends non-zero.
TEST_F(CollectiveTimeout, SigstopOfOneRankEndsTheJobNamingIt) {
  const std::string cfg = dir_.write("c.yaml", tiny((dir_.path() / "o").string(), 400).yaml());
  BackgroundJob j(dir_.path() / "job", job(cfg, 2), 2);
  ASSERT_TRUE(j.wait_for_log({"step 3/400"}, 180)) << j.log();
  const int victim = j.rank(1);
  ASSERT_GT(victim, 0);
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  const auto t0 = BackgroundJob::Clock::now();
  const double seconds = j.wait_done(60);
  ASSERT_TRUE(j.done()) << "still running 60 s after kill -STOP\n" << j.log();
  const std::string log = j.log();
  EXPECT_NE(j.code(), 0) << log;
  EXPECT_LT(seconds, kEndsWithin) << log;
  EXPECT_NE(log.find("collective timeout: "), std::string::npos) << log;
  EXPECT_NE(log.find("did not arrive: rank 1 ("), std::string::npos) << log;
  EXPECT_EQ(log.find("step 400/400"), std::string::npos) << log;
  std::cout << "kill -STOP rank 1: job ended after " << BackgroundJob::since(t0) << " s\n";
  expect_rerun_resumes(cfg, (dir_.path() / "o/r").string(), 2);
}

// Rank 1 stops itself before backward at step 4, with buckets all-reduced from backward's hooks:
// rank 0 waits in the first bucket's all-reduce and names it, the step and rank 1.
TEST_F(CollectiveTimeout, SigstopDuringBackwardNamesTheBucket) {
  const std::string cfg = dir_.write(
      "c.yaml", tiny((dir_.path() / "o").string(), 8, /*cluster=*/false)
                    .append("cluster: {timeout_seconds: 3, overlap: true, bucket_mb: 0.001}\n")
                    .yaml());
  BackgroundJob j(dir_.path() / "job", job(cfg, 2, "AGAVE_FAULT=sigstop:4:1"), 2);
  ASSERT_TRUE(j.wait_for_log({"AGAVE_FAULT: SIGSTOP at step 4"}, 180)) << j.log();
  const double seconds = j.wait_done(60);
  ASSERT_TRUE(j.done()) << j.log();
  const std::string log = j.log();
  EXPECT_NE(j.code(), 0) << log;
  EXPECT_LT(seconds, kEndsWithin) << log;
  expect_timeout_line(log, "bucket 1/", "at step 4 of run r");
  EXPECT_EQ(count_of(log, "collective timeout"), 1u) << log;
  std::cout << "SIGSTOP before backward: job ended " << seconds << " s after the stop\n";
  expect_rerun_resumes(cfg, (dir_.path() / "o/r").string(), 2);
}

// Rank 1 stops as the final evaluation begins: rank 0 evaluates its share, then times out in the
// evaluation's all-reduce.
TEST_F(CollectiveTimeout, SigstopDuringTheFinalEvalNamesTheEval) {
  const std::string cfg = dir_.write("c.yaml", tiny((dir_.path() / "o").string(), 4).yaml());
  BackgroundJob j(dir_.path() / "job", job(cfg, 2, "AGAVE_FAULT=sigstop-eval:4:1"), 2);
  ASSERT_TRUE(j.wait_for_log({"AGAVE_FAULT: SIGSTOP in the evaluation at step 4"}, 180)) << j.log();
  const double seconds = j.wait_done(60);
  ASSERT_TRUE(j.done()) << j.log();
  const std::string log = j.log();
  EXPECT_NE(j.code(), 0) << log;
  EXPECT_LT(seconds, kEndsWithin) << log;
  expect_timeout_line(log, "eval: ", "at step 4 of run r");
  EXPECT_FALSE(fs::exists(dir_.path() / "o/r/summary.json"));
  std::cout << "SIGSTOP in the final eval: job ended " << seconds << " s after the stop\n";
  // The final checkpoint is kept; the rerun only evaluates it.
  const auto rerun = sh(job(cfg, 2));
  EXPECT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("checkpoint at the last step 4 but no summary.json"),
            std::string::npos)
      << rerun.output;
}

using JobChannel = NoHang;

// Two sweep groups (one rank each); SIGUSR1 reaches world rank 1 only. Both groups checkpoint,
// the job exits 75, and the rerun finishes both runs.
TEST_F(JobChannel, StopSignalToOneRankStopsEveryGroup) {
  const int steps = 150;
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write(
      "c.yaml", tiny(out, steps)
                    .append("sweep: {ranks_per_run: 1, grid: {loss.lambda: [1.0, 2.0]}}\n")
                    .yaml());
  {
    BackgroundJob j(dir_.path() / "job", job(cfg, 2), 2);
    ASSERT_TRUE(j.wait_for_log({"[lambda=1.0] step 3/", "[lambda=2.0] step 3/"}, 180)) << j.log();
    const int victim = j.rank(1);
    ASSERT_GT(victim, 0);
    ASSERT_EQ(::kill(victim, SIGUSR1), 0);
    j.wait_done(60);
    ASSERT_TRUE(j.done()) << j.log();
    const std::string log = j.log();
    EXPECT_EQ(j.code(), 75) << log;
    EXPECT_NE(log.find("[lambda=1.0] stop requested: checkpointing at step"), std::string::npos)
        << log;
    EXPECT_NE(log.find("[lambda=2.0] stop requested: checkpointing at step"), std::string::npos)
        << log;
    for (const char* run : {"lambda=1.0", "lambda=2.0"}) {
      EXPECT_TRUE(fs::exists(out + "/r/" + run + "/checkpoints/latest")) << run << "\n" << log;
      EXPECT_FALSE(fs::exists(out + "/r/" + run + "/summary.json")) << run;
    }
  }
  const auto rerun = sh(job(cfg, 2));
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  for (const char* run : {"lambda=1.0", "lambda=2.0"}) {
    EXPECT_TRUE(fs::exists(out + "/r/" + run + "/summary.json")) << run << "\n" << rerun.output;
  }
}

using RunLock = NoHang;

// A second job on a run that a first job trains: exit 2 at once, naming the holder.
TEST_F(RunLock, SecondJobOnTheSameRunExits2NamingTheHolder) {
  const std::string cfg = dir_.write("c.yaml", tiny((dir_.path() / "o").string(), 400).yaml());
  BackgroundJob first(dir_.path() / "job", job(cfg, 1), 1);
  ASSERT_TRUE(first.wait_for_log({"step 2/400"}, 180)) << first.log();
  const int holder = first.rank(0);
  ASSERT_GT(holder, 0);
  const auto second = sh(job(cfg, 1));
  EXPECT_EQ(second.code, 2) << second.output;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  EXPECT_NE(second.output.find("is being trained by another job (" + std::string(host) + " pid " +
                               std::to_string(holder) + ")"),
            std::string::npos)
      << second.output;
  EXPECT_EQ(count_of(second.output, "agave_trainer: error:"), 1u) << second.output;
  EXPECT_FALSE(first.done()) << first.log();  // the holder trains on, untouched
}

using RunCompletion = NoHang;

// Killed after the last checkpoint and before summary.json: the rerun evaluates and writes it
// instead of calling the run complete; the next rerun then trains nothing.
TEST_F(RunCompletion, CheckpointAtTheLastStepWithoutSummaryRunsTheFinalEval) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 4).yaml());
  ASSERT_EQ(sh(job(cfg, 1)).code, 0);
  ASSERT_TRUE(fs::remove(out + "/r/summary.json"));
  const auto rerun = sh(job(cfg, 1));
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("no summary.json: running the final evaluation"), std::string::npos)
      << rerun.output;
  EXPECT_NE(rerun.output.find("eval step 4:"), std::string::npos) << rerun.output;
  ASSERT_TRUE(fs::exists(out + "/r/summary.json")) << rerun.output;
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(out + "/r/summary.json"))["steps"], 4);
  const auto again = sh(job(cfg, 1));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("already complete at step 4"), std::string::npos) << again.output;
}

// A stop at the last step checkpoints and exits 75 without the evaluation; the restart runs it.
TEST_F(RunCompletion, StopAtTheLastStepEvaluatesOnRestart) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 4).yaml());
  const auto stopped = sh(job(cfg, 2, "AGAVE_FAULT=stop:3:1"));
  ASSERT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_TRUE(fs::exists(out + "/r/checkpoints/step-00000004/manifest.json")) << stopped.output;
  EXPECT_FALSE(fs::exists(out + "/r/summary.json"));
  const auto restart = sh(job(cfg, 2));
  ASSERT_EQ(restart.code, 0) << restart.output;
  EXPECT_TRUE(fs::exists(out + "/r/summary.json")) << restart.output;
}

// A stop request that arrives during a periodic evaluation (after its first batch on rank 1):
// every rank leaves the evaluation at the same batch, the run checkpoints at that step and
// exits 75 without reporting the partial numbers; the restart resumes there and finishes.
TEST_F(RunCompletion, StopDuringAPeriodicEvalCheckpointsThere) {
  const std::string out = (dir_.path() / "o").string();
  // 16 test images, 2 a batch: 4 batches a rank, so the stop lands mid-evaluation.
  const std::string cfg = dir_.write("c.yaml", tiny(out, 6).eval(2, 16, 2, 0).eval_every(2).yaml());
  const auto stopped = sh(job(cfg, 2, "AGAVE_FAULT=stop-eval:2:1"));
  ASSERT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_NE(stopped.output.find("stop requested during the evaluation after step 2"),
            std::string::npos)
      << stopped.output;
  EXPECT_EQ(stopped.output.find("eval step 2:"), std::string::npos) << stopped.output;
  EXPECT_TRUE(fs::exists(out + "/r/checkpoints/step-00000002/manifest.json")) << stopped.output;
  EXPECT_FALSE(fs::exists(out + "/r/checkpoints/step-00000003")) << stopped.output;
  const auto restart = sh(job(cfg, 2));
  ASSERT_EQ(restart.code, 0) << restart.output;
  EXPECT_NE(restart.output.find("at step 2"), std::string::npos) << restart.output;
  EXPECT_NE(restart.output.find("eval step 4:"), std::string::npos) << restart.output;
  EXPECT_TRUE(fs::exists(out + "/r/summary.json")) << restart.output;
}

// A stop request during the final evaluation: exit 75 with the last step's checkpoint and no
// summary.json; the restart trains nothing and runs the final evaluation.
TEST_F(RunCompletion, StopDuringTheFinalEvalEvaluatesOnRestart) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 4).eval(2, 16, 2, 0).yaml());
  const auto stopped = sh(job(cfg, 2, "AGAVE_FAULT=stop-eval:4:0"));
  ASSERT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_NE(stopped.output.find("the final evaluation runs when the run restarts"),
            std::string::npos)
      << stopped.output;
  EXPECT_TRUE(fs::exists(out + "/r/checkpoints/step-00000004/manifest.json")) << stopped.output;
  EXPECT_FALSE(fs::exists(out + "/r/summary.json"));
  const auto restart = sh(job(cfg, 2));
  ASSERT_EQ(restart.code, 0) << restart.output;
  EXPECT_NE(restart.output.find("no summary.json: running the final evaluation"), std::string::npos)
      << restart.output;
  EXPECT_TRUE(fs::exists(out + "/r/summary.json")) << restart.output;
}

}  // namespace
}  // namespace agave::testing
