#pragma once
// The base of the fault tests: they train on Debian's Fashion-MNIST, converted once into one
// folder that every test of tests/faults shares (the trainer converts under a file lock, so
// tests running side by side convert it once too).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::testing {

class FashionMnistRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed";
    }
  }
  static std::string shards() {
    return (std::filesystem::path(AGAVE_BIN_DIR).parent_path() / "tests/faults/fmnist-shards")
        .string();
  }
};

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
  TempDir dir_;
};

}  // namespace agave::testing
