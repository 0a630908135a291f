// Every file of fuzz/corpus/<target>/ through its fuzz target: a regression test for every crash
// the fuzzers ever found (each crash input is committed there) and a check that the real-file
// seeds still parse. A crash ends this test binary, which CTest reports as a failure.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/targets.h"

namespace agave::fuzz {
namespace {

namespace fs = std::filesystem;

class Replay : public ::testing::TestWithParam<NamedTarget> {};

TEST_P(Replay, EveryCorpusInputReturnsNormally) {
  const fs::path dir = fs::path(AGAVE_SOURCE_DIR) / "fuzz" / "corpus" / GetParam().name;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    SCOPED_TRACE(e.path().string());
    EXPECT_EQ(GetParam().fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
    ++n;
  }
  EXPECT_GT(n, 0u) << "no seeds in " << dir;
}

INSTANTIATE_TEST_SUITE_P(Corpus, Replay, ::testing::ValuesIn(all_targets()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace agave::fuzz
