// agave_trainer on corrupt or crafted shards (issue 14): one error line naming the shard, exit
// code 2 (bad data given by the user), no signal, no checkpoint written.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/common/process.h"
#include "tests/data/test_util.h"

namespace {

namespace fs = std::filesystem;
using agave::data::test::TempDir;
using agave::testing::kTrainer;

// A tiny Fashion-MNIST-shaped shard folder (train: 512 images in 2 shards, test: 64) and a config
// of a tiny model that trains on it for `steps` steps, checkpointing only at the end.
struct TinyRun {
  TempDir dir;
  agave::data::Manifest train;
  std::string config;
  explicit TinyRun(int steps) {
    const std::string shards = dir / "shards";
    fs::create_directories(shards);
    train = agave::data::test::write_synthetic_split(shards, "train", {256, 256}, {1, 28, 28}, 64);
    agave::data::test::write_synthetic_split(shards, "test", {64}, {1, 28, 28}, 64);
    for (const char* split : {"train", "test"}) {
      // ensure_shards accepts a folder whose manifests name the configured data set.
      const std::string m = agave::data::manifest_path(shards, split);
      auto j = nlohmann::json::parse(std::ifstream(m));
      j["dataset"] = "fashion_mnist";
      std::ofstream(m, std::ios::trunc) << j.dump();
    }
    std::ofstream(dir / "c.yaml")
        << "run: {name: t, output_dir: " << (dir / "runs") << "}\n"
        << "data: {dataset: fashion_mnist, source: " << (dir / "nosource") << ", shards: " << shards
        << "}\n"
        << "model:\n  vae: {depth: 1, width: 8, latent_channels: 2, latent_resolution: 14}\n"
        << "  pixelcnn: {nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0}\n"
        << "aux: {resolution: 7, color_bins: 32}\n"
        << "train: {batch_size: 16, steps: " << steps << "}\n"
        << "eval: {subset: 16, final_subset: 16, importance_samples: 2, batch_size: 16, "
           "sample_images: 0}\n"
        << "checkpoint: {every: 0}\n"
        << "monitoring: {prometheus: false, progress: 'off'}\n";
    config = dir / "c.yaml";
  }
  std::string shard(size_t i) const { return train.shard_path(train.shards[i]); }
};

void expect_one_error_line_exit_two(const agave::testing::Result& r, const std::string& what,
                                    const TinyRun& run) {
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(agave::testing::count_of(r.output, "agave_trainer: error: "), 1u) << r.output;
  const auto at = r.output.find("agave_trainer: error: ");
  const std::string line =
      at == std::string::npos ? "" : r.output.substr(at, r.output.find('\n', at) - at);
  EXPECT_NE(line.find(what), std::string::npos) << line;
  EXPECT_FALSE(fs::exists(run.dir / "runs/t/checkpoints/latest")) << r.output;
}

TEST(UntrustedData, FlippedPixelByteStopsTrainingWithExitTwo) {
  TinyRun run(200);
  // One byte of one pixel of the second shard, in its first raw chunk.
  const auto locs = *agave::data::ShardReader(run.shard(1)).chunk_locations();
  auto bytes = agave::data::test::read_file(run.shard(1));
  bytes[locs[0].offset + 100] ^= 0x01;
  agave::data::test::write_file(run.shard(1), bytes);
  const auto r = agave::testing::sh(kTrainer + " " + run.config);
  expect_one_error_line_exit_two(r, run.shard(1) + ": content hashes to ", run);
}

TEST(UntrustedData, CraftedChunkAddressIsOneLineNotASegfault) {
  TinyRun run(4);
  const std::string shard = run.shard(0);
  const uint64_t addr = agave::data::ShardReader(shard).chunk_locations()->at(1).offset;
  auto bytes = agave::data::test::read_file(shard);
  // 2^64 - 2048 plus the chunk's 64 · 784 bytes wraps around past 0 (the SIGSEGV).
  const uint64_t bad = ~uint64_t{0} - 2047;
  int patched = 0;
  for (size_t i = 0; i + 8 <= bytes.size(); ++i) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + i, 8);
    if (v == addr) {
      std::memcpy(bytes.data() + i, &bad, 8);
      ++patched;
    }
  }
  ASSERT_EQ(patched, 1);
  agave::data::test::write_file(shard, bytes);
  const auto r = agave::testing::sh(kTrainer + " " + run.config);
  expect_one_error_line_exit_two(r, shard + ": chunk index: chunk at image 64", run);
}

// A broken test split is refused before the first training step, not after the whole run
// (issue 13): the shard's recorded checksum no longer matches its manifest.
TEST(UntrustedData, ABrokenTestSplitIsRefusedBeforeTraining) {
  TinyRun run(200);
  const std::string m = agave::data::manifest_path(run.dir / "shards", "test");
  auto j = nlohmann::json::parse(std::ifstream(m));
  std::string& sha = j["shards"][0]["sha256"].get_ref<std::string&>();
  sha[0] = sha[0] == '0' ? '1' : '0';
  std::ofstream(m, std::ios::trunc) << j.dump();
  const auto r = agave::testing::sh(kTrainer + " " + run.config);
  expect_one_error_line_exit_two(r, "test-0.h5: checksum attribute", run);
  EXPECT_EQ(r.output.find("] step "), std::string::npos) << "trained before the check";
  EXPECT_EQ(r.output.find("] phase "), std::string::npos) << r.output;
}

}  // namespace
