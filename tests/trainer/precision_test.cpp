// The precision rule: which dtype and weight layout a run computes in, per device and, for
// `auto` on a CPU, per the probe's measured times; the cache those times are kept in.
#include "trainer/precision.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "tests/common/test_files.h"
#include "trainer/precision_cache.h"
#include "trainer/precision_probe.h"

namespace agave::trainer {
namespace {

using agave::testing::TempDir;

const torch::Device kCpu(torch::kCPU);
const torch::Device kCuda(torch::kCUDA, 0);
const ProbeTimes kBf16Faster{20.0, 11.0};
const ProbeTimes kFp32Faster{20.0, 41.0};

TEST(ChooseNumerics, AutoOnACpuTakesWhicheverPrecisionRanTheProbeFaster) {
  const auto bf16 = choose_numerics(Precision::kAuto, kCpu, kBf16Faster);
  EXPECT_EQ(describe(bf16), "bf16 autocast + channels_last");
  ASSERT_TRUE(bf16.probe);
  EXPECT_EQ(bf16.probe->bf16_ms, 11.0);  // kept, for the start-up line and summary.json
  EXPECT_EQ(describe(choose_numerics(Precision::kAuto, kCpu, kFp32Faster)), "fp32 + channels_last");
  // A tie, no probe, or a probe that timed nothing: fp32, the safe numerics.
  EXPECT_FALSE(choose_numerics(Precision::kAuto, kCpu, ProbeTimes{20.0, 20.0}).bf16);
  EXPECT_FALSE(choose_numerics(Precision::kAuto, kCpu, std::nullopt).bf16);
  EXPECT_FALSE(choose_numerics(Precision::kAuto, kCpu, ProbeTimes{20.0, 0.0}).bf16);
}

TEST(ChooseNumerics, AnExplicitPrecisionWinsOverTheProbe) {
  EXPECT_TRUE(choose_numerics(Precision::kBf16, kCpu, kFp32Faster).bf16);
  EXPECT_FALSE(choose_numerics(Precision::kBf16, kCpu, kFp32Faster).probe);
  EXPECT_FALSE(choose_numerics(Precision::kFp32, kCpu, kBf16Faster).bf16);
  EXPECT_TRUE(choose_numerics(Precision::kFp32, kCpu, kBf16Faster).channels_last);
}

TEST(ChooseNumerics, CudaIsBf16ChannelsLastUnlessFp32IsAsked) {
  EXPECT_EQ(describe(choose_numerics(Precision::kAuto, kCuda, kFp32Faster)),
            "bf16 autocast + channels_last");
  EXPECT_FALSE(choose_numerics(Precision::kAuto, kCuda, kFp32Faster).probe);
  EXPECT_EQ(describe(choose_numerics(Precision::kFp32, kCuda, std::nullopt)), "fp32");
}

TEST(ChooseNumerics, DescribesTheProbeThatDecided) {
  EXPECT_EQ(describe_choice(choose_numerics(Precision::kAuto, kCpu, kFp32Faster)),
            "fp32 + channels_last (auto: probe convolution forward + backward fp32 20.0 ms, bf16 "
            "41.0 ms, measured)");
  EXPECT_EQ(describe_choice(choose_numerics(Precision::kFp32, kCpu, std::nullopt)),
            "fp32 + channels_last");
}

TEST(ChooseNumerics, RanksReadBackWhatRankZeroSends) {
  auto n = choose_numerics(Precision::kAuto, kCpu, ProbeTimes{20.5, 11.25, true});
  const auto back = numerics_from_json(nlohmann::json::parse(to_json(n).dump()));
  EXPECT_EQ(describe_choice(back), describe_choice(n));
  EXPECT_TRUE(back.probe->cached);
  EXPECT_FALSE(numerics_from_json(to_json(choose_numerics(Precision::kBf16, kCpu, {}))).probe);
}

class PrecisionCacheTest : public ::testing::Test {
 protected:
  PrecisionCache cache() const { return PrecisionCache(dir_.path() / "agave" / "precision.json"); }
  std::string text() const {
    std::ostringstream s;
    s << std::ifstream(cache().file()).rdbuf();
    return s.str();
  }
  TempDir dir_;
};

TEST_F(PrecisionCacheTest, AStoredProbeIsFoundUnderItsKeyOnly) {
  EXPECT_FALSE(cache().find("cpu A"));  // no file yet: a miss
  cache().store("cpu A", kBf16Faster);  // creates agave/
  const auto hit = cache().find("cpu A");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->fp32_ms, 20.0);
  EXPECT_EQ(hit->bf16_ms, 11.0);
  EXPECT_TRUE(hit->cached);
  EXPECT_FALSE(cache().find("cpu B"));  // another machine kind measures its own
}

TEST_F(PrecisionCacheTest, StoringOneKindKeepsTheOthers) {
  cache().store("cpu A", kBf16Faster);
  cache().store("cpu B", kFp32Faster);
  cache().store("cpu A", ProbeTimes{30.0, 12.0});
  EXPECT_EQ(cache().find("cpu A")->fp32_ms, 30.0);
  EXPECT_EQ(cache().find("cpu B")->bf16_ms, 41.0);
}

TEST_F(PrecisionCacheTest, ACorruptFileReadsAsEmptyAndIsReplacedWhole) {
  std::filesystem::create_directories(cache().file().parent_path());
  for (const std::string& bad :
       std::vector<std::string>{"{\"entries\": {\"cpu A\": {\"fp32_ms\": 2", "[1, 2]",
                                "{\"entries\": {\"cpu A\": {\"fp32_ms\": \"x\", \"bf16_ms\": 1}}}",
                                "{\"entries\": {\"cpu A\": {\"fp32_ms\": -1, \"bf16_ms\": 1}}}",
                                std::string("\0\xff\xfe", 3)}) {
    std::ofstream(cache().file()) << bad;
    EXPECT_FALSE(cache().find("cpu A")) << bad;
    cache().store("cpu A", kFp32Faster);
    EXPECT_EQ(cache().find("cpu A")->fp32_ms, 20.0) << bad;
    EXPECT_TRUE(nlohmann::json::accept(text())) << text();
  }
}

TEST_F(PrecisionCacheTest, AStoreThatCannotWriteFailsWithTheFileName) {
  std::ofstream(dir_.path() / "agave") << "";  // a file where the folder should be
  try {
    cache().store("cpu A", kFp32Faster);
    ADD_FAILURE() << "stored below a plain file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("precision.json"), std::string::npos) << e.what();
  }
}

TEST(PrecisionCacheFile, FollowsXdgCacheHomeThenHome) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string old_xdg = xdg ? xdg : "", old_home = home ? home : "";
  ::setenv("XDG_CACHE_HOME", "/x/cache", 1);
  EXPECT_EQ(PrecisionCache::default_file(), std::filesystem::path("/x/cache/agave/precision.json"));
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(PrecisionCache::default_file(),
            std::filesystem::path("/home/u/.cache/agave/precision.json"));
  ::unsetenv("HOME");
  EXPECT_FALSE(PrecisionCache::default_file());
  if (xdg) ::setenv("XDG_CACHE_HOME", old_xdg.c_str(), 1);
  if (home) ::setenv("HOME", old_home.c_str(), 1);
}

// The probe itself, on this machine: both times measured within the start-up budget, stored
// under this machine's key, read back on the next start without measuring again.
TEST(PrecisionProbe, MeasuresOnceThenReadsTheCache) {
  TempDir dir;
  const auto file = dir.path() / "precision.json";
  const auto start = std::chrono::steady_clock::now();
  std::string note;
  const auto first = resolve_numerics(Precision::kAuto, kCpu, file, &note);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(note.empty()) << note;
  ASSERT_TRUE(first.probe);
  EXPECT_FALSE(first.probe->cached);
  EXPECT_GT(first.probe->fp32_ms, 0);
  EXPECT_GT(first.probe->bf16_ms, 0);
  EXPECT_EQ(first.bf16, first.probe->bf16_ms < first.probe->fp32_ms);
  EXPECT_LT(seconds, 6.0);  // about 1 s on a quiet machine; a loaded one (ctest -j) gets leeway
  EXPECT_TRUE(PrecisionCache(file).find(probe_key()));

  const auto second = resolve_numerics(Precision::kAuto, kCpu, file, &note);
  ASSERT_TRUE(second.probe);
  EXPECT_TRUE(second.probe->cached);
  EXPECT_EQ(second.probe->fp32_ms, first.probe->fp32_ms);
  EXPECT_EQ(second.bf16, first.bf16);
}

TEST(PrecisionProbe, ACorruptCacheIsMeasuredOverWithoutAnError) {
  TempDir dir;
  const auto file = dir.path() / "precision.json";
  std::ofstream(file) << "{\"entries\": ";
  std::string note;
  const auto n = resolve_numerics(Precision::kAuto, kCpu, file, &note);
  ASSERT_TRUE(n.probe);
  EXPECT_FALSE(n.probe->cached);
  EXPECT_TRUE(PrecisionCache(file).find(probe_key()));
}

TEST(PrecisionProbe, AnUnwritableCacheStillDecidesAndSaysSo) {
  TempDir dir;
  std::ofstream(dir.path() / "file") << "";
  std::string note;
  // A cache "folder" that is a file: the store fails, the run goes on.
  const auto n = resolve_numerics(Precision::kAuto, kCpu, dir.path() / "file" / "p.json", &note);
  ASSERT_TRUE(n.probe);
  EXPECT_NE(note.find("precision cache not written"), std::string::npos) << note;
}

TEST(PrecisionProbe, KeyNamesTheCpuModelTheLibTorchAndTheLayout) {
  const auto key = probe_key();
  EXPECT_NE(key.find(std::string("LibTorch ") + TORCH_VERSION), std::string::npos) << key;
  EXPECT_NE(key.find("channels_last"), std::string::npos) << key;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      EXPECT_EQ(key.rfind(line.substr(line.find_first_not_of(" \t", line.find(':') + 1)), 0), 0u)
          << key;
      break;
    }
  }
}

TEST(ApplyLayout, PutsFourDimensionalWeightsInChannelsLastOnlyWhenAsked) {
  torch::nn::Sequential m(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)),
                          torch::nn::Linear(8, 2));
  apply_layout(Numerics{false, false, std::nullopt}, *m);
  for (const auto& p : m->parameters()) EXPECT_TRUE(p.is_contiguous());
  const auto before = m->parameters()[0].detach().clone();
  apply_layout(Numerics{false, true, std::nullopt}, *m);
  const auto conv_weight = m->parameters()[0];
  EXPECT_TRUE(conv_weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(conv_weight.is_contiguous());
  EXPECT_TRUE(torch::equal(conv_weight, before));   // same values, other memory order
  EXPECT_TRUE(m->parameters()[2].is_contiguous());  // the linear layer's 2-d weight
}

}  // namespace
}  // namespace agave::trainer
