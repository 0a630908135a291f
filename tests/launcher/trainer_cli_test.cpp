// agave_trainer as users run it: a real process, and real MPI ranks under mpirun.
#include <gtest/gtest.h>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace {

using agave::testing::kTrainer;
using agave::testing::TempDir;

using agave::testing::mpirun;
using agave::testing::sh;

const std::string kConfigs = std::string(AGAVE_SOURCE_DIR) + "/configs/";

TEST(TrainerCli, DryRunUnderTwoRanksSplitsTheSweep) {
  TempDir out;
  const auto r = sh(mpirun(2) + kTrainer + " --dry-run " + kConfigs +
                    "sweep_lambda.yaml --set run.output_dir=" + out.path().string() + "/runs");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("plan: 5 run(s) on 2 rank(s), 2 group(s) of 1"), std::string::npos)
      << r.output;
  // Each rank printed its own decision, taken from its own split communicator.
  EXPECT_NE(r.output.find("group 0 rank 0/1, runs: lambda=1 lambda=4 lambda=12"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("group 1 rank 0/1, runs: lambda=2 lambda=8"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("output " + out.path().string() + "/runs/sweep_lambda/lambda=8"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(out.path() / "runs")) << "a dry run wrote output";
}

TEST(TrainerCli, DryRunOneRunOnTwoRanks) {
  const auto r = sh(mpirun(2) + kTrainer + " --dry-run " + kConfigs + "quickstart.yaml");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("run 0: quickstart  ranks 0-1 (group 0)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("batch 32 (16/rank)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("group 0 rank 1/2, runs: quickstart"), std::string::npos) << r.output;
  // The seed, which experiments/run.sh --seeds counts from.
  const auto seeded = sh(kTrainer + " --dry-run " + kConfigs + "quickstart.yaml --set run.seed=41");
  EXPECT_NE(seeded.output.find("(32/rank)  seed 41  output "), std::string::npos) << seeded.output;
}

TEST(TrainerCli, RankCountThatDoesNotFitTheSweepExitsTwo) {
  const auto r = sh(mpirun(3) + kTrainer + " --dry-run " + kConfigs +
                    "sweep_lambda.yaml --set sweep.ranks_per_run=2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("sweep.ranks_per_run = 2 does not divide the 3 ranks"), std::string::npos)
      << r.output;
}

TEST(TrainerCli, ConfigErrorsExitTwoWithOneLineAndWriteNothing) {
  TempDir dir;
  const std::string cfg =
      dir.write("bad.yaml", "run: {name: x, output_dir: " + dir.path().string() +
                                "/runs}\nloss: {lambda: -1}\ntrain: {steps: 5}\n");
  auto r = sh(kTrainer + " " + cfg);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output,
            "agave_trainer: error: " + cfg + ":2: loss.lambda: must be in [0, 1000], got -1\n");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "runs"));
  // Under mpirun every rank finds it; the job fails with the same code and one message.
  r = sh(mpirun(2) + kTrainer + " " + cfg);
  EXPECT_NE(r.code, 0) << r.output;
  size_t count = 0;
  for (size_t p = r.output.find("loss.lambda: must be"); p != std::string::npos;
       p = r.output.find("loss.lambda: must be", p + 1))
    ++count;
  EXPECT_EQ(count, 1u) << r.output;
  r = sh(kTrainer + " " + dir.path().string() + "/nope.yaml");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("nope.yaml: cannot read the config file"), std::string::npos) << r.output;
  r = sh(kTrainer + " --no-such-flag " + cfg);
  EXPECT_EQ(r.code, 2) << r.output;
}

// A user without CIFAR-10 (no data/cifar10, no shards yet) is told both ways to get it, in one
// line, before MPI starts or anything is written; an empty data/cifar10 folder is the same.
TEST(TrainerCli, AMissingCifar10SourceSaysHowToGetItInOneLineAndExitsTwo) {
  TempDir dir;
  const std::string run = "cd " + dir.path().string() + " && " + kTrainer + " " + kConfigs +
                          "cifar10_agave_cpu.yaml --set cluster.threads_per_rank=1";
  const std::string line =
      "agave_trainer: error: " + kConfigs +
      "cifar10_agave_cpu.yaml: data.source: 'data/cifar10' holds no CIFAR-10 (and data.shards "
      "'data-cache/cifar10' has no shards yet); get it with `agave_data fetch cifar10 --output "
      "data/cifar10` or give a folder of its binary batches or cifar-10-binary.tar.gz with --set "
      "data.source=DIR_OR_ARCHIVE\n";
  auto r = sh(run);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output, line);
  std::filesystem::create_directories(dir.path() / "data/cifar10");
  r = sh(run);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output, line);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "runs")) << "a run folder was written";
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data-cache")) << "a shard folder was made";
  // Under mpirun every rank finds it and the job prints the line once.
  r = sh("cd " + dir.path().string() + " && " + mpirun(2) + kTrainer + " " + kConfigs +
         "cifar10_agave_cpu.yaml --set cluster.threads_per_rank=1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(agave::testing::count_of(r.output, "holds no CIFAR-10"), 1u) << r.output;
  // Fashion-MNIST names its Debian package.
  r = sh(kTrainer + " " + kConfigs + "quickstart.yaml --set data.source=" + dir.path().string() +
         "/none --set data.shards=" + dir.path().string() + "/shards");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("holds no Fashion-MNIST"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("apt-get install dataset-fashion-mnist"), std::string::npos) << r.output;
}

TEST(TrainerCli, AKeyValueArgumentIsPointedAtSet) {
  const auto r = sh(kTrainer + " " + kConfigs + "quickstart.yaml loss.lambda=4");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("agave_trainer: hint: config keys are set with --set loss.lambda=4"),
            std::string::npos)
      << r.output;
  const auto fine =
      sh(kTrainer + " --print-config --set loss.lambda=4 " + kConfigs + "quickstart.yaml");
  EXPECT_EQ(fine.output.find("hint:"), std::string::npos) << fine.output;
}

TEST(TrainerCli, AMisspeltResumeKeywordFailsBeforeMpiNamingTheChoices) {
  TempDir out;
  const auto r = sh(mpirun(2) + kTrainer + " " + kConfigs + "quickstart.yaml --resume nevr --set " +
                    "run.output_dir=" + out.path().string() + "/runs");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(r.output.find("agave_trainer 0."), std::string::npos) << "MPI started:\n" << r.output;
  EXPECT_NE(r.output.find("--resume nevr: no such folder; expected auto, never or a checkpoint "
                          "folder"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(out.path() / "runs"));
}

TEST(TrainerCli, PrintConfigShowsResolvedValuesWithOverrides) {
  const auto r =
      sh(kTrainer + " --print-config --set loss.lambda=7 " + kConfigs + "quickstart.yaml");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("lambda: 7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("importance_samples: 16"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("timeout_seconds: 300"), std::string::npos) << r.output;  // a default
  TempDir dir;
  const std::string printed = dir.write("resolved.yaml", r.output);
  const auto again = sh(kTrainer + " --print-config " + printed);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(again.output, r.output);
}

// Issue 30: --steps N is --set train.steps=N, which scales the quickstart's phases with one
// line saying how; the printed config reads back and takes the README's --set train.phases.
TEST(TrainerCli, StepsScaleThePhasesAndASavedConfigTakesNewPhases) {
  const auto r = sh(kTrainer + " --print-config --steps 60 " + kConfigs + "quickstart.yaml");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("agave_trainer: train.steps = 60 scales the phases (600 steps): "
                          "pretrain_vae 200 -> 20, pretrain_pixelcnn 150 -> 15, joint 250 -> 25\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("{name: joint, steps: 25}"), std::string::npos) << r.output;
  const auto printed = sh(kTrainer + " --print-config " + kConfigs + "quickstart.yaml");
  ASSERT_EQ(printed.code, 0) << printed.output;
  TempDir dir;
  const std::string saved = dir.write("saved.yaml", printed.output);
  const auto shorter =
      sh(kTrainer + " --print-config --set 'train.phases=[{name: joint, steps: 40}]' " + saved);
  ASSERT_EQ(shorter.code, 0) << shorter.output;
  EXPECT_NE(shorter.output.find("steps: 40\n"), std::string::npos) << shorter.output;
  EXPECT_EQ(shorter.output.find("{name: pretrain_vae"), std::string::npos) << shorter.output;
  EXPECT_EQ(sh(kTrainer + " --steps 0 " + saved).code, 2);
}

TEST(TrainerCli, SweepPointTrainsOnePointOnAllRanks) {
  auto r =
      sh(mpirun(2) + kTrainer + " --dry-run --sweep-point 3 " + kConfigs + "sweep_lambda.yaml");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("run 0: lambda=8  ranks 0-1 (group 0)"), std::string::npos) << r.output;
  r = sh(kTrainer + " --dry-run --sweep-point 5 " + kConfigs + "sweep_lambda.yaml");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--sweep-point 5: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("has 5 sweep point(s) (0-4)"), std::string::npos) << r.output;
}

TEST(TrainerCli, EveryShippedConfigIsValid) {
  for (const auto& entry : std::filesystem::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".yaml") continue;
    const auto r = sh(kTrainer + " --dry-run " + entry.path().string());
    EXPECT_EQ(r.code, 0) << entry.path() << "\n" << r.output;
  }
}

}  // namespace

namespace {

// The start-up line of a dry run under `prefix` (taskset, environment), rank 0.
std::string thread_line(const std::string& prefix) {
  const auto r = sh(prefix + " " + mpirun(1) + " --bind-to none " + kTrainer + " --dry-run " +
                    kConfigs + "quickstart.yaml");
  EXPECT_EQ(r.code, 0) << r.output;
  const auto at = r.output.find("rank 0: ");
  return at == std::string::npos ? r.output : r.output.substr(at, r.output.find('\n', at) - at);
}

TEST(TrainerCli, ThreadsFollowTheCpusTheRankIsGiven) {
  // One CPU in the affinity mask: one thread, not hardware_concurrency()'s count.
  EXPECT_EQ(thread_line("env -u OMP_NUM_THREADS -u SLURM_CPUS_PER_TASK taskset -c 0"),
            "rank 0: 1 CPU(s) bound, 1 thread(s) (affinity)");
  // OMP_NUM_THREADS beyond the mask is obeyed, with a warning naming the remedy.
  const auto omp = thread_line("env -u SLURM_CPUS_PER_TASK OMP_NUM_THREADS=3 taskset -c 0");
  EXPECT_NE(omp.find("1 CPU(s) bound, 3 thread(s) (OMP_NUM_THREADS); warning: more threads"),
            std::string::npos)
      << omp;
  EXPECT_NE(omp.find("--bind-to core"), std::string::npos) << omp;
  // Slurm's allocation wins over OMP_NUM_THREADS; an explicit setting wins over both.
  EXPECT_NE(thread_line("OMP_NUM_THREADS=3 SLURM_CPUS_PER_TASK=1 taskset -c 0")
                .find("1 thread(s) (SLURM_CPUS_PER_TASK)"),
            std::string::npos);
  const auto r =
      sh("SLURM_CPUS_PER_TASK=1 taskset -c 0 " + mpirun(1) + " --bind-to none " + kTrainer +
         " --dry-run " + kConfigs + "quickstart.yaml --set cluster.threads_per_rank=2");
  EXPECT_NE(r.output.find("2 thread(s) (threads_per_rank); warning"), std::string::npos)
      << r.output;
}

// A rank bound to fewer CPUs than its share of the node (Open MPI binds one core per rank by
// default) warns once at start-up, naming the mpirun flags that lift it; a rank with its share
// says nothing.
TEST(TrainerCli, ARankBoundBelowItsShareOfTheNodeWarnsOnceNamingTheFlags) {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (cpus < 2) GTEST_SKIP() << "needs a node of 2 CPUs or more";
  const std::string dry = kTrainer + " --dry-run " + kConfigs + "quickstart.yaml";
  const std::string env = "env -u SLURM_CPUS_ON_NODE ";
  for (const std::string& how : {env + "taskset -c 0 " + mpirun(1) + "--bind-to none ",
                                 env + mpirun(1) + "--bind-to core "}) {
    const auto r = sh(how + dry);
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(
        agave::testing::count_of(r.output, "warning: this rank is bound to 1 CPU(s) of the " +
                                               std::to_string(cpus) + " per rank this node offers"),
        1u)
        << how << "\n"
        << r.output;
    EXPECT_NE(r.output.find("mpirun --bind-to none, or --map-by slot:PE=" + std::to_string(cpus)),
              std::string::npos)
        << r.output;
  }
  const auto unbound = sh(env + mpirun(1) + "--bind-to none " + dry);
  EXPECT_EQ(unbound.output.find("bound to"), std::string::npos) << unbound.output;
  if (cpus == 2) {
    // Two ranks bound to a core each of a 2-CPU node have their share.
    const auto two = sh(env + mpirun(2) + "--bind-to core " + dry);
    EXPECT_EQ(two.output.find("bound to"), std::string::npos) << two.output;
  }
}

}  // namespace
