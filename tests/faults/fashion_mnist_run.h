#pragma once
// The base of the fault tests: they train on Debian's Fashion-MNIST, converted once into one
// folder that every test of tests/faults shares (the trainer converts under a file lock, so
// tests running side by side convert it once too).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

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

}  // namespace agave::testing
