// Every executable as a user first meets it: `--version` names the build, `--help` prints the
// usage; both exit 0 and do nothing else (no MPI, no benchmark, no file written).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/common/process.h"
#include "version/version.h"

namespace {

using agave::testing::sh;

struct Executable {
  const char* name;
  bool bench;  // built only with AGAVE_BUILD_BENCH
};

class Executables : public ::testing::TestWithParam<Executable> {
 protected:
  std::string path() const { return std::string(AGAVE_BIN_DIR) + "/" + GetParam().name; }
  void SetUp() override {
    if (GetParam().bench && !std::filesystem::exists(path())) {
      GTEST_SKIP() << path() << " is not built (AGAVE_BUILD_BENCH=OFF)";
    }
  }
};

TEST_P(Executables, VersionPrintsTheBuildAndExitsZero) {
  const auto r = sh(path() + " --version");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, agave::version::describe(GetParam().name) + "\n");
  const auto& b = agave::version::build_info();
  EXPECT_NE(r.output.find(std::string(GetParam().name) + " " + b.version + " (commit "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("LibTorch " + b.torch), std::string::npos) << r.output;
}

TEST_P(Executables, HelpPrintsUsageAndExitsZero) {
  const auto r = sh(path() + " --help");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.rfind(GetParam().name, 0), 0u) << "usage should start with the name:\n"
                                                    << r.output;
  EXPECT_NE(r.output.find("Usage:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--version"), std::string::npos) << r.output;
  // The usage alone: a benchmark that ran would have printed its rates.
  for (const char* rate : {"img/s", "images/s", "MB/s"}) {
    EXPECT_EQ(r.output.find(rate), std::string::npos) << r.output;
  }
}

TEST_P(Executables, ArgumentErrorsExitNonZeroAndPointToHelp) {
  const auto r = sh(path() + " --no-such-option");
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Run with --help for more information."), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    All, Executables,
    ::testing::Values(Executable{"agave_trainer", false}, Executable{"agave_eval", false},
                      Executable{"agave_data", false}, Executable{"agave_sweep_plot", false},
                      Executable{"bench_checkpoint", true}, Executable{"bench_eval", true},
                      Executable{"bench_loader", true}, Executable{"bench_model_pixelcnn", true},
                      Executable{"bench_sampling", true}, Executable{"bench_train_step", true},
                      Executable{"bench_verify", true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SweepPlotCli, AMissingSweepFolderIsAUsageError) {
  const auto r = sh(std::string(AGAVE_BIN_DIR) + "/agave_sweep_plot /nonexistent/sweep");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("agave_sweep_plot: error: /nonexistent/sweep: no such folder"),
            std::string::npos)
      << r.output;
}

// agave_h5probe is started by the other executables, but a user may try it too.
TEST(H5probeCli, HelpAndVersionExitZeroAndMisuseIs64) {
  const std::string probe = std::string(AGAVE_BIN_DIR) + "/agave_h5probe";
  const auto help = sh(probe + " --help");
  EXPECT_EQ(help.code, 0) << help.output;
  EXPECT_NE(help.output.find("usage: agave_h5probe"), std::string::npos) << help.output;
  const auto version = sh(probe + " --version");
  EXPECT_EQ(version.code, 0) << version.output;
  EXPECT_NE(version.output.find("agave_h5probe "), std::string::npos) << version.output;
  EXPECT_EQ(sh(probe + " one-argument").code, 64);
}

// The commit is the checkout's: configure-time `git rev-parse --short HEAD`.
TEST(BuildInfo, CommitIsTheCheckoutsHead) {
  const auto git = sh("git -C " + std::string(AGAVE_SOURCE_DIR) + " rev-parse --short HEAD");
  if (git.code != 0) {
    EXPECT_EQ(agave::version::build_info().commit, "unknown");
    return;
  }
  EXPECT_EQ(agave::version::build_info().commit + "\n", git.output)
      << "configure again after a commit (cmake does when HEAD moved)";
}

}  // namespace
