#include <gtest/gtest.h>

#include "data/errors.h"
#include "data/fetch.h"
#include "io/checksum.h"
#include "tests/data/test_util.h"

namespace agave::data {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

TEST(Fetch, UnreachableServerIsOneLineAndLeavesNoFile) {
  if (!fs::exists("/usr/bin/curl")) GTEST_SKIP() << "no /usr/bin/curl";
  TempDir dir;
  const std::string url = "http://127.0.0.1:9/cifar-10-binary.tar.gz";
  try {
    fetch_cifar10(dir.path().string(), {}, url);
    FAIL() << "nothing listens on port 9";
  } catch (const FetchError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(url), std::string::npos) << msg;
    EXPECT_NE(msg.find("download failed: curl:"), std::string::npos) << msg;
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Fetch, VerifiesMd5) {
  if (!fs::exists("/usr/bin/curl")) GTEST_SKIP() << "no /usr/bin/curl";
  TempDir dir;
  const std::string src = dir / "payload.bin";
  test::write_file(src, std::vector<uint8_t>(100000, 7));
  const std::string md5 = io::file_digest(src, io::Digest::Algorithm::kMd5);
  const std::string dest = dir / "out/copy.bin";
  download("file://" + src, dest, md5);
  EXPECT_EQ(test::read_file(dest), test::read_file(src));
  download("file://" + src, dest, md5);  // already there: kept

  const std::string bad = dir / "out/bad.bin";
  try {
    download("file://" + src, bad, std::string(32, '0'));
    FAIL();
  } catch (const FetchError& e) {
    EXPECT_NE(std::string(e.what()).find("MD5 " + md5), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(bad));
  EXPECT_FALSE(fs::exists(bad + ".tmp"));
  EXPECT_EQ(io::Digest(io::Digest::Algorithm::kMd5).hex(), "d41d8cd98f00b204e9800998ecf8427e");
}

}  // namespace
}  // namespace agave::data
