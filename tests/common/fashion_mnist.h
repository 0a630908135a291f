#pragma once
// Debian's Fashion-MNIST (package dataset-fashion-mnist), what the end-to-end tests train on,
// and the fixture of tests that need it. Where a test needs converted shards it either converts
// them into a folder of its own (any path under a TempDir: the trainer converts on first use) or
// shares shared_fashion_mnist_shards() with the fault tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace agave::testing {

inline constexpr const char* kFashionMnistSource = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kNoFashionMnist = "Debian's dataset-fashion-mnist is not installed";

inline bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(kFashionMnistSource) + "/train-images-idx3-ubyte.gz");
}

// Shards converted once into one folder of the build tree that every test using it shares (the
// trainer converts under a file lock, so tests running side by side convert it once too).
inline std::string shared_fashion_mnist_shards() {
  return (std::filesystem::path(AGAVE_BIN_DIR).parent_path() / "tests/faults/fmnist-shards")
      .string();
}

// Skips each test when the data set is missing.
class FashionMnistRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_fashion_mnist()) GTEST_SKIP() << kNoFashionMnist;
  }
  static std::string shards() { return shared_fashion_mnist_shards(); }
};

}  // namespace agave::testing
