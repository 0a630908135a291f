// write_file_atomically (summary.json, config.yaml, failed.json, manifests): a reader
// sees the old file or the new one, never a half-written one, and no temporary file stays.
#include "io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/common/test_files.h"

namespace agave::io {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicFile, ReplacesTheWholeFileAndLeavesNoTemporary) {
  agave::testing::TempDir dir;
  const fs::path file = dir.path() / "summary.json";
  write_file_atomically(file.string(), std::string(100000, 'a'));
  write_file_atomically(file.string(), "{\"steps\": 3}\n");
  EXPECT_EQ(slurp(file), "{\"steps\": 3}\n");
  EXPECT_EQ(entries(dir.path()), 1u);
}

TEST(AtomicFile, AFailedWriteKeepsTheOldFileAndNamesTheFile) {
  agave::testing::TempDir dir;
  // A folder where the file should go: the rename fails after the temporary is written.
  const fs::path target = dir.path() / "summary.json";
  fs::create_directories(target / "keep");
  try {
    write_file_atomically(target.string(), "new");
    FAIL() << "a write over a non-empty folder succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(target / "keep"));
  EXPECT_EQ(entries(dir.path()), 1u) << "the temporary file was left behind";
  // A missing folder: nothing is created anywhere.
  EXPECT_THROW(write_file_atomically((dir.path() / "no/such/file").string(), "x"),
               std::runtime_error);
  EXPECT_EQ(entries(dir.path()), 1u);
}

}  // namespace
}  // namespace agave::io
