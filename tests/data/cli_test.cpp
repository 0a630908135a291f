// Runs the agave_data executable as a user would: exit codes and the one-line error promise.
#include <gtest/gtest.h>

#include "tests/data/test_util.h"

namespace agave::data {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

const std::string kCli = AGAVE_BIN_DIR "/agave_data";

struct CliResult {
  int code;
  std::string out;
};
CliResult cli(const std::string& args) {
  CliResult r;
  r.code = test::run_command(kCli + " " + args, &r.out);
  return r;
}

// Error output: exactly one line, "agave_data: error: ..." naming `what`.
void expect_one_error_line(const CliResult& r, const std::string& what) {
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(r.out.rfind("agave_data: error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(what), std::string::npos) << r.out;
}

TEST(DataCli, ConvertThenInspect) {
  TempDir dir;
  const std::string out = dir / "fm";
  CliResult r = cli(std::string("convert -q --source ") + test::kFashionMnist + " --output " + out +
              " --images-per-shard 20000 --gzip 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("fashion_mnist train: 60000 images of 1x28x28 in 3 shards"),
            std::string::npos)
      << r.out;
  r = cli("inspect -q " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("all checksums verified"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gzip 1"), std::string::npos) << r.out;

  // Corrupt one shard's bytes: inspect exits 1 and names the shard.
  const std::string shard = out + "/test-00000-of-00001.h5";
  auto bytes = test::read_file(shard);
  bytes.resize(bytes.size() - 4096);
  test::write_file(shard, bytes);
  r = cli("inspect -q " + out);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(shard), std::string::npos) << r.out;
}

TEST(DataCli, BadInputIsOneLineAndExitOne) {
  TempDir dir;
  CliResult r = cli("inspect " + (dir / "missing"));
  EXPECT_EQ(r.code, 1);
  expect_one_error_line(r, dir / "missing");

  test::write_file(dir / "junk.h5", std::vector<uint8_t>(4000, 1));
  r = cli("inspect " + (dir / "junk.h5"));
  EXPECT_EQ(r.code, 1);
  expect_one_error_line(r, dir / "junk.h5");

  r = cli("convert --source " + dir.path().string() + " --output " + (dir / "o"));
  EXPECT_EQ(r.code, 1);
  expect_one_error_line(r, "cannot tell the data set");
  EXPECT_FALSE(fs::exists(dir / "o"));
}

TEST(DataCli, FetchWithoutNetworkIsOneLine) {
  TempDir dir;
  CliResult r = cli("fetch cifar10 -q --output " + dir.path().string() +
              " --url http://127.0.0.1:9/cifar-10-binary.tar.gz");
  EXPECT_EQ(r.code, 1);
  expect_one_error_line(r, "download failed");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(DataCli, UsageErrorsExitTwo) {
  EXPECT_EQ(cli("").code, 2);
  EXPECT_EQ(cli("convert --source x").code, 2);
  EXPECT_EQ(cli("convert --source x --output y --gzip 12").code, 2);
  EXPECT_EQ(cli("convert --source x --output y --dataset mnist9").code, 2);
  EXPECT_EQ(cli("--help").code, 0);
}

}  // namespace
}  // namespace agave::data
