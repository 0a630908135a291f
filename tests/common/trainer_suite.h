#pragma once
// What the end-to-end trainer suites (tests/trainer) share: Debian's Fashion-MNIST, converted by
// a suite's first run into a folder of the suite's own and removed after its last test, and
// the comparison of two checkpoints by tests/trainer/compare_checkpoints.py (h5py, as users
// read them).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include "tests/common/fashion_mnist.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace agave::testing {

class TrainerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (have_fashion_mnist()) shards_ = new TempDir();
  }
  static void TearDownTestSuite() {
    delete shards_;
    shards_ = nullptr;
  }
  void SetUp() override {
    if (!shards_) GTEST_SKIP() << kNoFashionMnist;
  }
  // data.shards of the suite's runs.
  static std::string shards() { return shards_->path().string() + "/fmnist"; }

 private:
  inline static TempDir* shards_ = nullptr;
};

// (compared, differing) tensors whose names start with `prefix` (all: ""), between two
// checkpoint folders; compared is -1 when the script compared nothing.
inline std::pair<int, int> changed_tensors(const std::filesystem::path& a,
                                           const std::filesystem::path& b,
                                           const std::string& prefix = "") {
  const auto r = sh("/usr/bin/python3 " + std::string(AGAVE_SOURCE_DIR) +
                    "/tests/trainer/compare_checkpoints.py " + a.string() + " " + b.string() +
                    (prefix.empty() ? "" : " --only " + prefix));
  int compared = -1, differ = -1, sa = 0, sb = 0;
  const auto at = r.output.find("compared ");
  if (at != std::string::npos) {
    std::sscanf(r.output.c_str() + at, "compared %d tensors at steps %d and %d, %d differ",
                &compared, &sa, &sb, &differ);
  }
  return {compared, differ};
}

}  // namespace agave::testing
