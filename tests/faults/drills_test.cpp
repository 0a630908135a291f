// The fault drills of issue 31, each as an operator would meet it, each asserting the exit code,
// how long the job took to end, what the run folder keeps, and that a rerun finishes: a rank 0
// slower than the timeout at work only it does (pictures), a rank stopped there, a conversion
// lock held by another process (with and without a stop request), a rank stopped while rank 0
// converts a sweep run's data, a stale summary.json, a prune after resuming an earlier
// checkpoint, a symlinked run lock, an impossible manifest step, a negative --sweep-point, a
// refused job that must not touch sweep.csv, and the exit code of a signalled mpirun.
// Real mpirun jobs of the tiny Fashion-MNIST model (tests/faults/tiny_jobs.h).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/common/background_job.h"
#include "tests/faults/tiny_jobs.h"
#include "trainer/fault_hooks.h"

namespace agave::testing {
namespace {

namespace fs = std::filesystem;

// What a stalled job may take to end: the 3 s timeout, up to 2 s of probing, the abort.
constexpr double kEndsWithin = 15;

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(std::ifstream(p)); }

std::string latest_of(const std::string& run) {
  std::string name = read_text(run + "/checkpoints/latest");
  while (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

// Another process holding a file lock (a second job converting into the same folder).
class HeldLock {
 public:
  explicit HeldLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) == 0) {
      const std::string who = "holder-host pid 4242\n";
      held_ = ::pwrite(fd_, who.data(), who.size(), 0) == static_cast<ssize_t>(who.size());
    }
  }
  ~HeldLock() { release(); }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  bool held() const { return held_; }
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool held_ = false;
};

class Drill : public TinyJobs {
 protected:
  // A two-step run whose data must first be converted into the fresh folder `shards`.
  std::string converting(const std::string& out, const fs::path& shards, int timeout) const {
    return TinyConfig("r", out, shards.string())
        .batch_size(2)
        .phases({{"joint", 2}})
        .eval(2, 4, 4, 0)
        .timeout_seconds(timeout)
        .yaml();
  }
  void signal_mpirun(bool stop_a_rank);
};

// Drawing the pictures takes rank 0 longer than the 3 s timeout: the others wait for it as long
// as it answers probes, and the job finishes (it aborted at the end-of-run barrier before).
TEST_F(Drill, RankZeroSlowerThanTheTimeoutAtItsPicturesFinishes) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 4).eval(2, 4, 4, 4).yaml());
  const auto t0 = BackgroundJob::Clock::now();
  const auto r = sh(job(cfg, 2, "AGAVE_FAULT=slow-pictures:4:0"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GE(BackgroundJob::since(t0), agave::trainer::kSlowPicturesSeconds) << r.output;
  EXPECT_NE(
      r.output.find("takes " + std::to_string(agave::trainer::kSlowPicturesSeconds) + " s longer"),
      std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("collective timeout"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out + "/r/samples.png")) << r.output;
  EXPECT_EQ(read_json(out + "/r/summary.json")["checkpoint"], "step-00000004");
}

// Rank 0 stops while drawing: rank 1 asks it, gets no answer, and ends the job naming it; the
// final checkpoint is kept and the rerun evaluates it.
TEST_F(Drill, RankZeroStoppedAtItsPicturesEndsTheJobNamingIt) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 4).eval(2, 4, 4, 4).yaml());
  {
    BackgroundJob j(dir_.path() / "job", job(cfg, 2, "AGAVE_FAULT=sigstop-pictures:4:0"), 2);
    ASSERT_TRUE(j.wait_for_log({"AGAVE_FAULT: SIGSTOP drawing the pictures of step 4"}, 180))
        << j.log();
    const double seconds = j.wait_done(60);
    ASSERT_TRUE(j.done()) << j.log();
    const std::string log = j.log();
    EXPECT_NE(j.code(), 0) << log;
    EXPECT_LT(seconds, kEndsWithin) << log;
    EXPECT_NE(log.find("rank 0's pictures of step 4 waited"), std::string::npos) << log;
    EXPECT_NE(log.find("rank 0 ("), std::string::npos) << log;
    EXPECT_NE(log.find("did not answer (stopped or hung)"), std::string::npos) << log;
  }
  // (Open MPI's abort sends the stopped rank SIGCONT before SIGKILL: it may still have written
  // a summary.json of the evaluation it finished; either way the rerun ends complete.)
  EXPECT_EQ(latest_of(out + "/r"), "step-00000004");
  const auto rerun = sh(job(cfg, 2));
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_EQ(read_json(out + "/r/summary.json")["step"], 4);
}

// Another process holds the conversion lock of a fresh shard folder: rank 0 waits at most the
// 3 s timeout and ends the job naming the holder (it waited for good before); released, the
// rerun converts and trains.
TEST_F(Drill, AHeldConversionLockEndsTheJobNamingItsHolder) {
  const fs::path shards = dir_.path() / "shards";
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", converting(out, shards, 3));
  HeldLock lock(shards / ".convert.lock");
  ASSERT_TRUE(lock.held());
  const auto t0 = BackgroundJob::Clock::now();
  const auto r = sh(job(cfg, 2));
  const double seconds = BackgroundJob::since(t0);
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.code, 75) << r.output;
  EXPECT_LT(seconds, 60) << r.output;
  EXPECT_NE(r.output.find("held by holder-host pid 4242 for more than 3 s"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(out + "/r/checkpoints"));
  lock.release();
  const auto rerun = sh(job(cfg, 2));
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_TRUE(fs::exists(out + "/r/summary.json"));
}

// A stop request while rank 0 waits for that lock ends the wait: exit 75 within seconds (the
// wait ignored SIGTERM before), nothing converted or trained.
TEST_F(Drill, AStopWhileWaitingForTheConversionLockExits75) {
  const fs::path shards = dir_.path() / "shards";
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", converting(out, shards, 120));
  HeldLock lock(shards / ".convert.lock");
  ASSERT_TRUE(lock.held());
  BackgroundJob j(dir_.path() / "job", job(cfg, 2), 2);
  ASSERT_TRUE(j.wait_for_log({"waiting for holder-host pid 4242"}, 120)) << j.log();
  const int rank0 = j.rank(0);
  ASSERT_GT(rank0, 0);
  ASSERT_EQ(::kill(rank0, SIGTERM), 0);
  const double seconds = j.wait_done(60);
  ASSERT_TRUE(j.done()) << j.log();
  EXPECT_EQ(j.code(), 75) << j.log();
  EXPECT_LT(seconds, 10) << j.log();
  EXPECT_FALSE(fs::exists(shards / "train.manifest.json"));
}

// A sweep over data.shards: the group's rank 0 converts the second run's data while rank 1
// waits for it; rank 0 stops (here while waiting for a lock another job holds): rank 1 ends the
// job within seconds naming it (it spun in a plain MPI_Barrier for good before).
TEST_F(Drill, RankZeroStoppedWhileConvertingASweepRunsDataIsNamed) {
  const fs::path second = dir_.path() / "shards-b";
  const std::string out = (dir_.path() / "o").string();
  // A 10 s timeout: rank 0 waits for the lock that long, and is stopped well before.
  const std::string cfg = dir_.write(
      "c.yaml",
      tiny(out, 2)
          .timeout_seconds(10)
          .append("sweep: {grid: {data.shards: [" + shards() + ", " + second.string() + "]}}\n")
          .yaml());
  HeldLock lock(second / ".convert.lock");
  ASSERT_TRUE(lock.held());
  BackgroundJob j(dir_.path() / "job", job(cfg, 2), 2);
  ASSERT_TRUE(j.wait_for_log({"waiting for holder-host pid 4242"}, 180)) << j.log();
  const int rank0 = j.rank(0);
  ASSERT_GT(rank0, 0);
  ASSERT_EQ(::kill(rank0, SIGSTOP), 0);
  const double seconds = j.wait_done(60);
  ASSERT_TRUE(j.done()) << j.log();
  const std::string log = j.log();
  EXPECT_NE(j.code(), 0) << log;
  EXPECT_LT(seconds, 10 + kEndsWithin) << log;
  EXPECT_NE(log.find("rank 0's data conversion for run"), std::string::npos) << log;
  EXPECT_NE(log.find("rank 0 ("), std::string::npos) << log;
  EXPECT_NE(log.find("did not answer (stopped or hung)"), std::string::npos) << log;
}

// A run extended from 4 to 6 steps and stopped in its final evaluation: its summary.json of
// step 4 must not make the requeued job call it complete; the requeue evaluates step 6.
TEST_F(Drill, AStaleSummaryDoesNotMarkAnExtendedRunComplete) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg4 = dir_.write("c4.yaml", tiny(out, 4).eval(2, 16, 2, 0).yaml());
  ASSERT_EQ(sh(job(cfg4, 2)).code, 0);
  ASSERT_EQ(read_json(out + "/r/summary.json")["step"], 4);
  const std::string cfg6 = dir_.write("c6.yaml", tiny(out, 6).eval(2, 16, 2, 0).yaml());
  const auto stopped = sh(job(cfg6, 2, "AGAVE_FAULT=stop-eval:6:0"));
  ASSERT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_FALSE(fs::exists(out + "/r/summary.json")) << stopped.output;
  EXPECT_TRUE(fs::exists(out + "/r/summary.stale.json")) << stopped.output;
  const auto requeued = sh(job(cfg6, 2));
  ASSERT_EQ(requeued.code, 0) << requeued.output;
  EXPECT_EQ(requeued.output.find("already complete"), std::string::npos) << requeued.output;
  EXPECT_NE(requeued.output.find("running the final evaluation"), std::string::npos)
      << requeued.output;
  const auto summary = read_json(out + "/r/summary.json");
  EXPECT_EQ(summary["step"], 6);
  EXPECT_EQ(summary["checkpoint"], "step-00000006");
  const auto again = sh(job(cfg6, 2));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("already complete at step 6"), std::string::npos) << again.output;
}

// Checkpoints 2, 4 and 6 exist; the run is resumed from step 2 with keep 2 and stopped at step
// 3: the checkpoint just written survives the prune and `latest` names it (it was deleted
// while `latest` named it, and the requeue resumed from the old step 6). The rerun continues
// from step 3 and finishes.
TEST_F(Drill, PruningAfterResumingAnEarlierCheckpointKeepsTheOneJustWritten) {
  const std::string out = (dir_.path() / "o").string();
  const std::string run = out + "/r";
  const std::string cfg3 = dir_.write("c3.yaml", tiny(out, 6).checkpoint(2, 3).yaml());
  ASSERT_EQ(sh(job(cfg3, 1)).code, 0);
  ASSERT_TRUE(fs::exists(run + "/checkpoints/step-00000002/manifest.json"));
  const std::string cfg2 = dir_.write("c2.yaml", tiny(out, 6).checkpoint(2, 2).yaml());
  const auto stopped =
      sh(job(cfg2, 1, "AGAVE_FAULT=stop:2:0", "--resume " + run + "/checkpoints/step-00000002"));
  ASSERT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step-00000003/manifest.json")) << stopped.output;
  EXPECT_EQ(latest_of(run), "step-00000003");
  const auto rerun = sh(job(cfg2, 1));
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("at step 3 "), std::string::npos) << rerun.output;
  EXPECT_EQ(read_json(run + "/summary.json")["checkpoint"], "step-00000006");
}

// A symbolic link planted as the run lock: refused with exit 2 naming it, its target intact.
TEST_F(Drill, ASymlinkedRunLockIsRefusedAndItsTargetKept) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 2).yaml());
  const std::string target = dir_.write("precious.txt", "38 bytes that must stay as they are.\n");
  fs::create_directories(out + "/r");
  fs::create_symlink(target, out + "/r/.agave.lock");
  const auto r = sh(job(cfg, 1));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("the run lock is a symbolic link"), std::string::npos) << r.output;
  EXPECT_EQ(count_of(r.output, "agave_trainer: error:"), 1u) << r.output;
  EXPECT_EQ(read_text(target), "38 bytes that must stay as they are.\n");
  fs::remove(out + "/r/.agave.lock");
  EXPECT_EQ(sh(job(cfg, 1)).code, 0);
}

// A manifest claiming step 10^12 of a 4-step run: refused with exit 2 naming the checkpoint,
// summary.json untouched (it recorded 10^12 steps and exit 0 before).
TEST_F(Drill, AManifestPastTheConfiguredStepsIsRefused) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 4).yaml());
  ASSERT_EQ(sh(job(cfg, 1)).code, 0);
  const std::string manifest = out + "/r/checkpoints/step-00000004/manifest.json";
  auto m = read_json(manifest);
  m["step"] = int64_t{1000000000000};
  std::ofstream(manifest) << m.dump(1);
  const std::string before = read_text(out + "/r/summary.json");
  const auto r = sh(job(cfg, 1));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("is at step 1000000000000, past the 4 steps"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_text(out + "/r/summary.json"), before);
}

TEST_F(Drill, ANegativeSweepPointIsRefused) {
  const std::string cfg =
      dir_.write("c.yaml", tiny((dir_.path() / "o").string(), 2)
                               .append("sweep: {grid: {loss.lambda: [1.0, 2.0]}}\n")
                               .yaml());
  const auto r = sh(std::string(kTrainer) + " " + cfg + " --sweep-point -1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--sweep-point"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_.path() / "o"));
}

// A job refused the runs of a sweep that another job trains leaves that sweep's sweep.csv as
// it is (it truncated and rewrote it before).
TEST_F(Drill, ARefusedSweepJobLeavesTheSweepTableAlone) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write(
      "c.yaml",
      tiny(out, 400).append("sweep: {ranks_per_run: 1, grid: {loss.lambda: [1.0, 2.0]}}\n").yaml());
  // Two groups: the first job holds both runs.
  BackgroundJob first(dir_.path() / "job", job(cfg, 2), 2);
  ASSERT_TRUE(first.wait_for_log({"[lambda=1.0] step 2/", "[lambda=2.0] step 2/"}, 180))
      << first.log();
  const std::string table = out + "/r/sweep.csv";
  std::ofstream(table) << "the first job's table\n";
  const auto second = sh(job(cfg, 1));
  EXPECT_EQ(second.code, 2) << second.output;
  EXPECT_NE(second.output.find("the sweep table is left as it is"), std::string::npos)
      << second.output;
  EXPECT_EQ(read_text(table), "the first job's table\n");
  EXPECT_FALSE(first.done()) << first.log();
}

// SIGTERM to mpirun itself (with rank 1 stopped first, if `stop_a_rank`: mpirun sends its
// ranks SIGCONT before the SIGTERM): every rank checkpoints and exits 75, mpirun returns 1, and
// world rank 0 records the agreed 75 in $AGAVE_EXIT_FILE for the job script; the rerun resumes
// at that checkpoint.
void Drill::signal_mpirun(bool stop_a_rank) {
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = dir_.write("c.yaml", tiny(out, 400).yaml());
  const std::string exit_file = (dir_.path() / "exit-code").string();
  {
    BackgroundJob j(dir_.path() / "job", job(cfg, 2, "AGAVE_EXIT_FILE=" + exit_file), 2);
    ASSERT_TRUE(j.wait_for_log({"step 3/400"}, 180)) << j.log();
    if (stop_a_rank) {
      ASSERT_EQ(::kill(j.rank(1), SIGSTOP), 0);
    }
    ASSERT_EQ(::kill(j.pid(), SIGTERM), 0);
    const double seconds = j.wait_done(60);
    ASSERT_TRUE(j.done()) << j.log();
    EXPECT_LT(seconds, kEndsWithin) << j.log();
    EXPECT_NE(j.log().find("stop requested: checkpointing at step"), std::string::npos) << j.log();
    // mpirun itself returns 1 here: the line says what to do, also at a terminal.
    EXPECT_NE(j.log().find("exit 75: run the same command again to continue"), std::string::npos)
        << j.log();
    EXPECT_EQ(read_text(exit_file), "75\n") << "mpirun returned " << j.code() << "\n" << j.log();
    std::cout << "SIGTERM to mpirun" << (stop_a_rank ? " with rank 1 stopped" : "")
              << ": mpirun returned " << j.code() << ", the ranks agreed on "
              << read_text(exit_file);
  }
  EXPECT_GT(expect_rerun_resumes(cfg, out + "/r", 2), 0);
}

TEST_F(Drill, TheAgreedExitCodeReachesTheCallerOfASignalledMpirun) { signal_mpirun(false); }

TEST_F(Drill, TheAgreedExitCodeReachesTheCallerOfASignalledMpirunWithAStoppedRank) {
  signal_mpirun(true);
}

}  // namespace
}  // namespace agave::testing
