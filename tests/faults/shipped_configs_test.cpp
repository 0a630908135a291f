// Every config in configs/ starts and trains (issue 13): a few steps of each under mpirun -np 2,
// overriding only sizes, steps and where things go, so a shipped config that cannot start on
// one node (two sweep groups asking for one metrics port) fails here, not on a user's machine.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "tests/common/cifar10.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"

namespace {

using agave::testing::mpirun;
using agave::testing::sh;
using agave::testing::TempDir;
namespace fs = std::filesystem;

class ShippedConfigs : public ::testing::TestWithParam<const char*> {};

// A port p such that p and p + 1 can both be bound on 127.0.0.1 right now.
int free_port_pair() {
  auto bindable = [](int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  };
  std::random_device seed;
  for (int p = 20000 + static_cast<int>(seed() % 10000) * 2; p < 60000; p += 2) {
    if (bindable(p) && bindable(p + 1)) return p;
  }
  return 20000;
}

TEST_P(ShippedConfigs, TrainsAFewStepsOnTwoRanks) {
  const std::string name = GetParam();
  const bool cifar = name.find("cifar") != std::string::npos || name == "sweep_aux";
  // The configs read CIFAR-10 from data/cifar10, which a checkout need not have: the tests'
  // copy is passed explicitly.
  const std::string source = cifar ? agave::testing::cifar10_source() : "";
  if (cifar && !fs::exists(source)) {
    GTEST_SKIP() << source << " is missing (AGAVE_CIFAR10 names another copy)";
  }
  if (!cifar && !agave::testing::have_fashion_mnist()) {
    GTEST_SKIP() << agave::testing::kNoFashionMnist;
  }
  TempDir out;
  const std::string shards =
      cifar ? (fs::path(AGAVE_BIN_DIR).parent_path() / "tests/faults/cifar10-shards").string()
            : agave::testing::shared_fashion_mnist_shards();
  const std::string latent = cifar ? "8" : "7";
  auto command = [&](int port) {
    return "cd " + std::string(AGAVE_SOURCE_DIR) + " && " + mpirun(2) + AGAVE_BIN_DIR +
           "/agave_trainer configs/" + name + ".yaml --set run.output_dir=" + out.path().string() +
           (cifar ? " --set data.source=" + source : std::string()) +
           " --set data.shards=" + shards +
           " --set 'model.vae={depth: 1, width: 8, latent_channels: 2, latent_resolution: " +
           latent + "}' --set 'model.pixelcnn={nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2}'" +
           " --set train.batch_size=4 --set 'train.phases=[{name: pretrain_vae, steps: 1}, " +
           "{name: pretrain_pixelcnn, steps: 1}, {name: joint, steps: 2}]'" +
           " --set eval.every=0 --set eval.importance_samples=2 --set eval.subset=4" +
           " --set eval.final_subset=4 --set eval.batch_size=4 --set eval.sample_images=0 --set "
           "monitoring.port=" +
           std::to_string(port) + " --set monitoring.progress=plain";
  };
  // Ports free a moment ago (port and port + 1: one per node-local rank) can still be taken by
  // another test's exporter before ours binds; that race is retried with fresh ports. A config
  // that cannot start on one node fails every attempt the same way.
  std::string cmd;
  agave::testing::Result r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    cmd = command(free_port_pair());
    r = sh(cmd);
    if (r.output.find("cannot serve Prometheus metrics") == std::string::npos) break;
  }
  EXPECT_EQ(r.code, 0) << cmd << "\n" << r.output;
  EXPECT_EQ(r.output.find("cannot serve Prometheus metrics"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Configs, ShippedConfigs,
                         ::testing::Values("quickstart", "sweep_lambda", "cifar10_agave",
                                           "cifar10_agave_cpu", "sweep_aux"));

// Every file in configs/ is in the list above.
TEST(ShippedConfigsList, CoversEveryFileInConfigs) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(std::string(AGAVE_SOURCE_DIR) + "/configs")) {
    n += e.path().extension() == ".yaml";
  }
  EXPECT_EQ(n, 5u) << "a config was added to configs/: add it to ShippedConfigs";
}

}  // namespace
