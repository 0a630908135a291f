// The generation loop with fake launches, and one generation around a fake mpirun (a shell
// script standing in for mpirun and its ranks).
#include "elastic/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace {

using namespace agave::elastic;
using agave::testing::count_of;
using agave::testing::TempDir;

const std::vector<Host> kThree = {{"a", 1}, {"b", 1}, {"c", 1}};

FailureReport lost(int rank, const std::string& host) {
  FailureReport f;
  f.step = 23;
  f.collective = "bucket 1/1 all-reduce";
  f.ranks = {rank};
  f.hosts = {host};
  return f;
}

// Runs the loop over `ends`, one a generation, recording the plans.
struct FakeJob {
  explicit FakeJob(std::vector<GenerationEnd> e) : ends(std::move(e)) {}
  std::vector<GenerationEnd> ends;
  std::vector<Plan> plans;
  std::vector<std::pair<int, size_t>> started;  // generation, hosts excluded
  std::vector<FailureCause> restarts;
  int run(const RankRange& ranks, int max_restarts, std::string& log) {
    SupervisorOptions o;
    o.ranks = ranks;
    o.max_restarts = max_restarts;
    o.global_batch = 6;
    o.discover = [] { return kThree; };
    o.run = [this](const Plan& p) {
      plans.push_back(p);
      return ends.at(plans.size() - 1);
    };
    o.resume_point = [this] { return plans.empty() ? std::string("the start") : "step 20"; };
    o.on_generation = [this](const Plan& p, size_t excluded) {
      started.emplace_back(p.generation, excluded);
    };
    o.on_restart = [this](FailureCause c) { restarts.push_back(c); };
    std::ostringstream out;
    const int code = supervise(o, out);
    log = out.str();
    return code;
  }
};

TEST(Supervise, ALostHostIsExcludedAndTheJobContinuesOnTheOthers) {
  FakeJob job({{1, lost(2, "c"), "rank 2 (c) did not answer"}, {0, std::nullopt, ""}});
  std::string log;
  EXPECT_EQ(job.run({2, 3}, 1, log), 0);
  ASSERT_EQ(job.plans.size(), 2u);
  EXPECT_EQ(job.plans[0].ranks, 3);
  EXPECT_EQ(job.plans[1].ranks, 2);
  EXPECT_EQ(names(job.plans[1].placement), "a, b");
  EXPECT_EQ(count_of(log, "\n"), 2u) << log;  // one line a generation
  EXPECT_NE(log.find("generation 1: hosts a, b, c, 3 rank(s), resuming from the start; previous: "
                     "first start"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("generation 2: hosts a, b (excluded: c), 2 rank(s), resuming from step 20; "
                     "previous: generation 1 failed: rank 2 (c) did not answer"),
            std::string::npos)
      << log;
}

TEST(Supervise, TheFinishedUserErrorAndStoppedCodesPassThroughUnrestarted) {
  for (int code : {0, 2, 75}) {
    FakeJob job({{code, std::nullopt, ""}});
    std::string log;
    EXPECT_EQ(job.run({1, 3}, 5, log), code);
    EXPECT_EQ(job.plans.size(), 1u) << code;
  }
}

TEST(Supervise, FewerHostsThanTheMinimumEndsWithOneLine) {
  FakeJob job({{1, lost(2, "c"), "rank 2 (c) did not answer"}});
  std::string log;
  EXPECT_EQ(job.run({3, 3}, 5, log), 1);
  EXPECT_EQ(job.plans.size(), 1u);
  const auto last = log.substr(log.rfind("agave_elastic:"));
  EXPECT_EQ(count_of(last, "\n"), 1u) << log;
  EXPECT_NE(last.find("agave_elastic: error: generation 2: live hosts a, b (excluded: c) hold 2 "
                      "slot(s): no rank count in 3..3 that divides the global batch 6; giving up "
                      "after 1 restart(s)"),
            std::string::npos)
      << log;
}

TEST(Supervise, AnExhaustedBudgetEndsWithOneLine) {
  FakeJob job({{1, std::nullopt, "mpirun exited 1"}, {1, std::nullopt, "mpirun exited 139"}});
  std::string log;
  EXPECT_EQ(job.run({1, 3}, 1, log), 1);
  EXPECT_EQ(job.plans.size(), 2u);
  EXPECT_NE(log.find("agave_elastic: error: restart budget of 1 spent; generation 2 failed: "
                     "mpirun exited 139\n"),
            std::string::npos)
      << log;
}

TEST(Supervise, TellsOfEachGenerationAndEachRestartWithItsCause) {
  GenerationEnd job_failed{1, std::nullopt, "rank 0 failed", FailureCause::kJobFailed};
  GenerationEnd lost_c{1, lost(2, "c"), "rank 2 (c) did not answer", FailureCause::kPeerLost};
  GenerationEnd mpirun_died{1, std::nullopt, "mpirun exited 139", FailureCause::kMpirunFailed};
  FakeJob job({job_failed, lost_c, mpirun_died});
  std::string log;
  EXPECT_EQ(job.run({1, 3}, 2, log), 1);  // the third failure spends the budget: no restart
  EXPECT_EQ(job.started, (std::vector<std::pair<int, size_t>>{{1, 0}, {2, 0}, {3, 1}}));
  EXPECT_EQ(job.restarts,
            (std::vector<FailureCause>{FailureCause::kJobFailed, FailureCause::kPeerLost}));
}

// Discovery that fails `failures` times, then finds the three hosts.
std::function<std::vector<Host>()> flaky_discovery(int failures) {
  auto left = std::make_shared<int>(failures);
  return [left] {
    if ((*left)-- > 0) throw std::runtime_error("discovery command timed out after 60 s");
    return kThree;
  };
}

TEST(Supervise, AFailedDiscoveryCostsARestartAndIsTriedAgain) {
  SupervisorOptions o;
  o.ranks = {1, 3};
  o.max_restarts = 1;
  o.retry_pause_seconds = 0;
  o.discover = flaky_discovery(1);
  std::vector<FailureCause> restarts;
  o.on_restart = [&](FailureCause c) { restarts.push_back(c); };
  int runs = 0;
  o.run = [&](const Plan&) {
    ++runs;
    return GenerationEnd{0, std::nullopt, ""};
  };
  std::ostringstream log;
  EXPECT_EQ(supervise(o, log), 0);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(restarts, std::vector<FailureCause>{FailureCause::kDiscoveryFailed});
  EXPECT_NE(log.str().find("agave_elastic: generation 1: host discovery failed: discovery command "
                           "timed out after 60 s; trying again\n"),
            std::string::npos)
      << log.str();
  EXPECT_NE(log.str().find("generation 2: hosts a, b, c"), std::string::npos) << log.str();
}

TEST(Supervise, DiscoveryFailingPastTheBudgetEndsWithOneLine) {
  SupervisorOptions o;
  o.ranks = {1, 3};
  o.max_restarts = 1;
  o.retry_pause_seconds = 0;
  o.discover = flaky_discovery(5);
  o.run = [](const Plan&) { return GenerationEnd{0, std::nullopt, ""}; };
  std::ostringstream log;
  EXPECT_EQ(supervise(o, log), 1);
  EXPECT_NE(log.str().find("agave_elastic: error: restart budget of 1 spent; generation 2 failed: "
                           "host discovery failed: discovery command timed out after 60 s\n"),
            std::string::npos)
      << log.str();
}

// A preemption's SIGTERM during the second discovery: the code supervise returns, or 100 + the
// generations run when it started more than one.
int stopped_during_the_second_discovery() {
  forward_stop_signals();
  SupervisorOptions o;
  o.ranks = {1, 3};
  o.max_restarts = 3;
  int discoveries = 0;
  o.discover = [&] {
    if (++discoveries == 2) raise(SIGTERM);
    return kThree;
  };
  int runs = 0;
  o.run = [&](const Plan&) {
    ++runs;
    return GenerationEnd{1, lost(2, "c"), "rank 2 (c) did not answer"};
  };
  const int code = supervise(o, std::cerr);
  return runs == 1 ? code : 100 + runs;
}

// In a child process: the stop flag, once raised, stays raised.
TEST(SuperviseDeathTest, AStopBetweenGenerationsStartsNoOtherAndEnds75) {
  EXPECT_EXIT(std::exit(stopped_during_the_second_discovery()), ::testing::ExitedWithCode(75),
              "stopped by a signal before generation 2 started");
}

TEST(FailureCause, AReportIsAPeerLostAnAgreedCodeAJobFailureElseMpirun) {
  EXPECT_EQ(failure_cause(true, true), FailureCause::kPeerLost);
  EXPECT_EQ(failure_cause(true, false), FailureCause::kPeerLost);
  EXPECT_EQ(failure_cause(false, true), FailureCause::kJobFailed);
  EXPECT_EQ(failure_cause(false, false), FailureCause::kMpirunFailed);
  EXPECT_STREQ(cause_name(FailureCause::kPeerLost), "peer_lost");
  EXPECT_STREQ(cause_name(FailureCause::kJobFailed), "job_failed");
  EXPECT_STREQ(cause_name(FailureCause::kMpirunFailed), "mpirun_failed");
  EXPECT_STREQ(cause_name(FailureCause::kDiscoveryFailed), "discovery_failed");
}

TEST(JobExitCode, AFailureReportOrNoAgreedCodeIsAFailureWhateverMpirunSays) {
  EXPECT_EQ(job_exit_code(true, 0, 0), 1);
  EXPECT_EQ(job_exit_code(false, 75, 1), 75);  // mpirun signalled returns 1; the ranks agreed 75
  EXPECT_EQ(job_exit_code(false, std::nullopt, 0), 1);  // mpirun 0 after a lost host
  EXPECT_EQ(job_exit_code(false, std::nullopt, 2), 2);  // a config error before MPI
  EXPECT_EQ(job_exit_code(false, std::nullopt, 139), 1);
}

// Alive and not a zombie (a killed orphan waits for whoever reaps orphans here).
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, name, state;
  return stat >> pid_field >> name >> state && state != "Z";
}

// A fake mpirun: `--hostfile H -np N -x V -x W CMD...`, records its arguments and runs CMD.
std::string fake_mpirun(const TempDir& dir) {
  const auto path = dir.write("mpirun.sh", "#!/bin/sh\necho \"$@\" > " + dir.path().string() +
                                               "/args\nshift 10\nexec \"$@\"\n");
  chmod(path.c_str(), 0755);
  return path;
}

GenerationEnd run_job(const TempDir& dir, const std::string& script, double grace) {
  Plan plan{1, 2, {{"a", 1}, {"b", 1}}};
  return run_with_mpirun(plan, {fake_mpirun(dir)}, {"/bin/sh", "-c", script}, dir.path().string(),
                         grace);
}

TEST(RunWithMpirun, TrustsTheAgreedExitCodeOverMpiruns) {
  TempDir dir;
  const auto end = run_job(dir, "echo 75 > $AGAVE_EXIT_FILE; exit 1", 1);
  EXPECT_EQ(end.code, 75);
  std::ifstream args(dir.path() / "args");
  std::string line;
  std::getline(args, line);
  EXPECT_EQ(line.rfind("--hostfile " + (dir.path() / "hostfile-1").string() +
                           " -np 2 -x AGAVE_EXIT_FILE -x AGAVE_FAILURE_DIR -x "
                           "AGAVE_ELASTIC_GENERATION /bin/sh -c",
                       0),
            0u)
      << line;
  std::ifstream hosts(dir.path() / "hostfile-1");
  std::stringstream text;
  text << hosts.rdbuf();
  EXPECT_EQ(text.str(), "a slots=1\nb slots=1\n");
}

TEST(RunWithMpirun, WithoutAnAgreedCodeMpirunsZeroIsAFailure) {
  TempDir dir;
  const auto end = run_job(dir, "exit 0", 1);
  EXPECT_EQ(end.code, 1);
  EXPECT_EQ(end.why, "mpirun exited 0 without an agreed exit code");
  EXPECT_EQ(end.cause, FailureCause::kMpirunFailed);
}

// A rank killed while writing its report leaves the atomic write's temporary file: it must
// neither vote nor count as a report.
TEST(RunWithMpirun, AReportsTemporaryFileIsNoReport) {
  TempDir dir;
  const auto end = run_job(dir,
                           "echo '{\"ranks\": [' > $AGAVE_FAILURE_DIR/failure-rank-1.json.tmp.99; "
                           "echo 0 > $AGAVE_EXIT_FILE",
                           1);
  EXPECT_EQ(end.code, 0);
  EXPECT_FALSE(end.failure);
}

TEST(RunWithMpirun, AnAgreedFailureCodeIsAJobFailure) {
  TempDir dir;
  const auto end = run_job(dir, "echo 1 > $AGAVE_EXIT_FILE; exit 1", 1);
  EXPECT_EQ(end.code, 1);
  EXPECT_EQ(end.cause, FailureCause::kJobFailed);
}

// After a partition mpirun waits for the lost host's daemon forever, deaf to SIGTERM: the
// failure report starts the grace period, then SIGTERM, then SIGKILL, of its whole group.
TEST(RunWithMpirun, AStuckMpirunIsKilledAfterTheGracePeriodsOnceAFailureIsReported) {
  TempDir dir;
  const auto pid_file = (dir.path() / "sleeper").string();
  const auto start = std::chrono::steady_clock::now();
  const auto end =
      run_job(dir,
              "trap '' TERM; sleep 300 & echo $! > " + pid_file +
                  "; printf '{\"step\": 23, \"ranks\": [1], \"hosts\": [\"b\"], "
                  "\"collective\": \"x\"}' > $AGAVE_FAILURE_DIR/failure-rank-1.json; wait",
              0.5);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(end.code, 1);
  ASSERT_TRUE(end.failure);
  EXPECT_EQ(end.why, "rank 1 (b) did not answer in x at step 23");
  EXPECT_EQ(end.cause, FailureCause::kPeerLost);
  EXPECT_LT(seconds, 10);
  std::ifstream in(pid_file);
  pid_t sleeper = 0;
  in >> sleeper;
  ASSERT_GT(sleeper, 0);
  for (int i = 0; i < 50 && running(sleeper); ++i) usleep(100000);
  EXPECT_FALSE(running(sleeper)) << "the job's process outlived mpirun";
}

}  // namespace
