// A metrics port in use is found before MPI starts: agave_trainer under mpirun exits 2 with one
// line naming the address and the keys that fix it, and writes nothing into the run folder.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "tests/common/fashion_mnist.h"
#include "tests/common/ports.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::monitoring {
namespace {

namespace fs = std::filesystem;
using agave::testing::BusyPort;
using agave::testing::count_of;
using agave::testing::sh;

TEST(MetricsPort, InUseFailsBeforeMpiStartsWithExit2AndLeavesNothingBehind) {
  if (!agave::testing::have_fashion_mnist()) GTEST_SKIP() << agave::testing::kNoFashionMnist;
  BusyPort busy;
  ASSERT_GT(busy.port, 0);
  agave::testing::TempDir dir;
  const std::string runs = (dir.path() / "runs").string();
  const std::string config = dir.write(
      "busy.yaml", agave::testing::TinyConfig("busy", runs, (dir.path() / "shards").string())
                       .prometheus_port(busy.port)
                       .yaml());
  const auto r = sh(agave::testing::mpirun(1) + agave::testing::kTrainer + " " + config +
                    " --set monitoring.next_free_port=false");
  EXPECT_EQ(r.code, 2) << r.output;
  const std::string address = "127.0.0.1:" + std::to_string(busy.port);
  EXPECT_EQ(count_of(r.output, "monitoring.port: " + address + " is in use"), 1u) << r.output;
  EXPECT_NE(r.output.find("monitoring.next_free_port: true"), std::string::npos) << r.output;
  // Before MPI: no rank started training, nothing was written.
  EXPECT_EQ(r.output.find("agave_trainer: run "), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(runs)) << "the failed start wrote into " << runs;
}

// A generation agave_elastic started again may find the port still held by this host's rank of
// the generation just ended: it waits (up to 30 s) for it to come free instead of exiting 2,
// which would end the whole elastic job (the test above is the same without the variable).
TEST(MetricsPort, ALaterElasticGenerationWaitsForThePortToComeFree) {
  if (!agave::testing::have_fashion_mnist()) GTEST_SKIP() << agave::testing::kNoFashionMnist;
  auto busy = std::make_unique<BusyPort>();
  const int port = busy->port;
  ASSERT_GT(port, 0);
  agave::testing::TempDir dir;
  const std::string runs = (dir.path() / "runs").string();
  const std::string config = dir.write(
      "busy.yaml", agave::testing::TinyConfig("busy", runs, (dir.path() / "shards").string())
                       .prometheus_port(port)
                       .yaml());
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    busy.reset();
  });
  const auto r =
      sh("AGAVE_ELASTIC_GENERATION=2 " + agave::testing::mpirun(1) + agave::testing::kTrainer +
         " " + config + " --set monitoring.next_free_port=false");
  release.join();
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("agave_trainer: run "), std::string::npos) << r.output;
}

// An address this host does not have is said to be that, not a port in use.
TEST(MetricsPort, ABindAddressNotOfThisHostIsNamedAsSuch) {
  if (!agave::testing::have_fashion_mnist()) GTEST_SKIP() << agave::testing::kNoFashionMnist;
  agave::testing::TempDir dir;
  const std::string runs = (dir.path() / "runs").string();
  const int port = agave::testing::free_port();
  const std::string config = dir.write(
      "far.yaml", agave::testing::TinyConfig("far", runs, (dir.path() / "shards").string())
                      .prometheus_port(port)
                      .yaml());
  const auto r = sh(agave::testing::mpirun(1) + agave::testing::kTrainer + " " + config +
                    " --set monitoring.next_free_port=false --set monitoring.bind=192.0.2.1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(count_of(r.output, "monitoring.bind: cannot serve metrics on 192.0.2.1:" +
                                   std::to_string(port) + " (Cannot assign requested address)"),
            1u)
      << r.output;
  EXPECT_EQ(r.output.find("is in use"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(runs)) << "the failed start wrote into " << runs;
}

// Every exporting rank checks its own port (monitoring.port + node-local rank) and says so
// itself: here rank 1's, with monitoring.every_rank.
TEST(MetricsPort, ASecondRanksPortInUseIsNamedByThatRank) {
  if (!agave::testing::have_fashion_mnist()) GTEST_SKIP() << agave::testing::kNoFashionMnist;
  BusyPort busy;
  agave::testing::TempDir dir;
  const std::string runs = (dir.path() / "runs").string();
  const std::string config = dir.write(
      "busy.yaml", agave::testing::TinyConfig("busy", runs, (dir.path() / "shards").string())
                       .prometheus_port(busy.port - 1)
                       .yaml());
  const auto r = sh(agave::testing::mpirun(2) + agave::testing::kTrainer + " " + config +
                    " --set monitoring.next_free_port=false --set monitoring.every_rank=true");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(count_of(r.output, "rank 1: " + config + ": monitoring.port: 127.0.0.1:" +
                                   std::to_string(busy.port) + " is in use"),
            1u)
      << r.output;
  EXPECT_NE(r.output.find("node-local rank 1"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(runs)) << "the failed start wrote into " << runs;
}

}  // namespace
}  // namespace agave::monitoring
