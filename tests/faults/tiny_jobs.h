#pragma once
// The jobs the fault tests run: the tiny model on Debian's Fashion-MNIST, the shards shared by
// every test of tests/faults (tests/common/fashion_mnist.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/common/background_job.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::testing {

// Jobs of the tiny model, as the fault drills run them: 2 images a batch, one pretraining step,
// evaluation on 4 images; a 3 s collective timeout unless `cluster` is false (the test then
// writes its own cluster section).
class TinyJobs : public FashionMnistRun {
 protected:
  TinyConfig tiny(const std::string& out, int steps, bool cluster = true) const {
    TinyConfig c = TinyConfig("r", out, shards())
                       .batch_size(2)
                       .phases({{"pretrain_vae", 1}, {"joint", steps - 1}})
                       .eval(2, 4, 4, 0)
                       .log_every(1);
    if (cluster) c.timeout_seconds(3);
    return c;
  }
  // `env` prefixes the command (AGAVE_FAULT=...); `args` follow the config.
  std::string job(const std::string& cfg, int ranks, const std::string& env = "",
                  const std::string& args = "") const {
    return env + " " + mpirun(ranks) + kTrainer + " " + cfg + (args.empty() ? "" : " " + args);
  }
  // The drills' last check: the run's newest complete checkpoint (`latest`, or none) is where a
  // rerun of `cfg` on `ranks` ranks continues; the rerun is stopped right at that step (exit 75)
  // to keep it short. Returns the step it resumed at (0: a fresh start).
  int expect_rerun_resumes(const std::string& cfg, const std::string& run, int ranks) const {
    std::string latest = read_text(std::filesystem::path(run) / "checkpoints" / "latest");
    while (!latest.empty() && latest.back() == '\n') latest.pop_back();
    const int step = latest.rfind("step-", 0) == 0 ? std::stoi(latest.substr(5)) : 0;
    if (step > 0) {
      EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(run) / "checkpoints" / latest /
                                          "manifest.json"))
          << latest;
    }
    const auto rerun = sh(job(cfg, ranks, "AGAVE_FAULT=stop:" + std::to_string(step) + ":0"));
    EXPECT_EQ(rerun.code, 75) << rerun.output;
    if (step > 0) {
      EXPECT_NE(rerun.output.find("at step " + std::to_string(step) + " "), std::string::npos)
          << rerun.output;
    }
    return step;
  }
  TempDir dir_;
};

}  // namespace agave::testing
