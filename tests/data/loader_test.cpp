#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/errors.h"
#include "data/loader.h"
#include "tests/data/test_util.h"

namespace agave::data {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

constexpr ImageShape kShape{2, 3, 3};
constexpr int64_t kBytes = 18;

// 1000 images in three uneven shards, chunks of 32 (the last chunk of each shard is partial).
struct Fixture {
  TempDir dir;
  Manifest manifest;
  explicit Fixture(int compression = 0, std::vector<int64_t> counts = {400, 390, 210})
      : manifest(test::write_synthetic_split(dir.path().string(), "train", counts, kShape, 32,
                                             compression)) {}
  std::string path() const { return dir.path().string(); }
};

LoaderOptions opts(int64_t batch, int64_t rank = 0, int64_t world = 1, bool drop_last = false) {
  LoaderOptions o;
  o.batch_size = batch;
  o.rank = rank;
  o.world = world;
  o.seed = 1234;
  o.prefetch = 3;
  o.shuffle_window = 128;
  o.drop_last = drop_last;
  return o;
}

// Every image must carry the pixels and label of the index the batch claims for it.
void check_batch(const Batch& b) {
  ASSERT_EQ(b.images.dtype(), torch::kUInt8);
  ASSERT_EQ(b.images.dim(), 4);
  ASSERT_EQ(b.images.size(1), kShape.channels);
  const int64_t n = b.images.size(0);
  ASSERT_EQ(b.labels.size(0), n);
  ASSERT_EQ(b.indices.size(0), n);
  const uint8_t* p = b.images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = b.indices[i].item<int64_t>();
    ASSERT_EQ(b.labels[i].item<int64_t>(), test::label_of(g));
    for (int64_t k = 0; k < kBytes; ++k) {
      ASSERT_EQ(p[i * kBytes + k], test::pixel(g, k)) << "image " << g << " byte " << k;
    }
  }
}

// Indices of one epoch, batch by batch.
std::vector<std::vector<int64_t>> epoch(ShardLoader& l) {
  std::vector<std::vector<int64_t>> out;
  while (auto b = l.next()) {
    check_batch(*b);
    auto idx = b->indices;
    out.emplace_back(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
  }
  return out;
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& v) {
  std::vector<int64_t> out;
  for (const auto& b : v) out.insert(out.end(), b.begin(), b.end());
  return out;
}

TEST(data_loader, RanksCoverEveryImageExactlyOncePerEpoch) {
  Fixture f;
  for (int64_t world = 1; world <= 4; ++world) {
    for (int64_t e = 0; e < 2; ++e) {
      std::vector<int64_t> all;
      for (int64_t r = 0; r < world; ++r) {
        ShardLoader l(f.path(), "train", opts(48, r, world));
        l.restore({e, 0});
        const auto mine = flat(epoch(l));
        // 1000 = world·q + rem: the first rem ranks hold one image more.
        EXPECT_EQ(static_cast<int64_t>(mine.size()), 1000 / world + (r < 1000 % world ? 1 : 0));
        EXPECT_EQ(l.images_per_epoch(), static_cast<int64_t>(mine.size()));
        all.insert(all.end(), mine.begin(), mine.end());
      }
      std::sort(all.begin(), all.end());
      ASSERT_EQ(all.size(), 1000u) << "world " << world;
      for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(all[i], i) << "world " << world;
    }
  }
}

TEST(data_loader, DropLastGivesEqualFullBatchesOnDisjointRanks) {
  Fixture f;
  for (int64_t world = 1; world <= 4; ++world) {
    std::set<int64_t> seen;
    for (int64_t r = 0; r < world; ++r) {
      ShardLoader l(f.path(), "train", opts(64, r, world, true));
      const auto batches = epoch(l);
      EXPECT_EQ(static_cast<int64_t>(batches.size()), 1000 / world / 64);
      EXPECT_EQ(l.batches_per_epoch(), static_cast<int64_t>(batches.size()));
      for (const auto& b : batches) {
        EXPECT_EQ(b.size(), 64u);
        for (int64_t g : b) EXPECT_TRUE(seen.insert(g).second) << "image " << g << " twice";
      }
    }
  }
}

TEST(data_loader, RanksReadOnlyTheirOwnChunks) {
  Fixture f;
  auto chunk_of = [](int64_t g) {
    const int64_t first = g < 400 ? 0 : g < 790 ? 400 : 790;
    return first * 1000 + (g - first) / 32;
  };
  for (int64_t world = 2; world <= 4; ++world) {
    std::map<int64_t, std::set<int64_t>> readers;  // chunk -> ranks that need it
    for (int64_t r = 0; r < world; ++r) {
      ShardLoader l(f.path(), "train", opts(50, r, world));
      for (int64_t g : flat(epoch(l))) readers[chunk_of(g)].insert(r);
    }
    int64_t shared = 0;
    for (const auto& [chunk, ranks] : readers) shared += ranks.size() > 1;
    // Only a chunk that straddles the boundary between two neighbouring slices is shared.
    EXPECT_LE(shared, world - 1) << "world " << world;
  }
}

TEST(data_loader, ShuffleIsSeededPerEpochAndMixesShards) {
  Fixture f;
  ShardLoader a(f.path(), "train", opts(100));
  const auto e0 = flat(epoch(a));
  const auto e1 = flat(epoch(a));
  EXPECT_NE(e0, e1) << "epochs must be shuffled differently";
  EXPECT_EQ(a.position(), (LoaderPosition{2, 0}));

  ShardLoader b(f.path(), "train", opts(100));
  EXPECT_EQ(flat(epoch(b)), e0) << "same seed, same order";
  auto other = opts(100);
  other.seed = 99;
  ShardLoader c(f.path(), "train", other);
  EXPECT_NE(flat(epoch(c)), e0);

  // The first batch draws from several chunks of several shards, not one run of images.
  std::set<int64_t> chunks, shards;
  for (int64_t i = 0; i < 100; ++i) {
    chunks.insert(e0[i] / 32);
    shards.insert(e0[i] < 400 ? 0 : e0[i] < 790 ? 1 : 2);
  }
  EXPECT_GE(chunks.size(), 3u);

  auto seq = opts(100);
  seq.shuffle = false;
  ShardLoader d(f.path(), "train", seq);
  const auto ordered = flat(epoch(d));
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(ordered[i], i);
}

TEST(data_loader, OrderDoesNotDependOnPrefetchDepth) {
  Fixture f;
  auto o1 = opts(33, 1, 3);
  o1.prefetch = 1;
  auto o8 = o1;
  o8.prefetch = 8;
  ShardLoader a(f.path(), "train", o1), b(f.path(), "train", o8);
  EXPECT_EQ(epoch(a), epoch(b));
}

TEST(data_loader, RestoreContinuesExactly) {
  Fixture f;
  for (bool drop_last : {false, true}) {
    const auto o = opts(40, 1, 2, drop_last);
    ShardLoader full(f.path(), "train", o);
    std::vector<std::vector<int64_t>> reference;
    std::vector<LoaderPosition> positions;
    for (int i = 0; i < 40; ++i) {  // across two epoch ends
      positions.push_back(full.position());
      auto b = full.next();
      reference.push_back(
          b ? std::vector<int64_t>(b->indices.data_ptr<int64_t>(),
                                   b->indices.data_ptr<int64_t>() + b->indices.numel())
            : std::vector<int64_t>{-1});
    }
    for (int cut : {0, 5, 12, 13, 14, 27}) {
      ShardLoader resumed(f.path(), "train", o);
      resumed.next();  // whatever it prefetched before the restore must be discarded
      resumed.restore(positions[cut]);
      EXPECT_EQ(resumed.position(), positions[cut]);
      for (int i = cut; i < 40; ++i) {
        auto b = resumed.next();
        const std::vector<int64_t> got =
            b ? std::vector<int64_t>(b->indices.data_ptr<int64_t>(),
                                     b->indices.data_ptr<int64_t>() + b->indices.numel())
              : std::vector<int64_t>{-1};
        ASSERT_EQ(got, reference[i])
            << "cut " << cut << " step " << i << " drop_last " << drop_last;
        if (b) {
          EXPECT_EQ(b->epoch, positions[i].epoch);
          EXPECT_EQ(b->index, positions[i].index);
        }
      }
    }
  }
  ShardLoader l(f.path(), "train", opts(40));
  EXPECT_THROW(l.restore({0, 1000}), DataError);
}

TEST(data_loader, GzipShardsYieldTheSameBatches) {
  Fixture raw(0), gz(6);
  ShardLoader a(raw.path(), "train", opts(50, 0, 2)), b(gz.path(), "train", opts(50, 0, 2));
  EXPECT_EQ(epoch(a), epoch(b));
}

TEST(data_loader, CorruptChunkSurfacesAsErrorFromNext) {
  Fixture f(6);
  const std::string shard = f.manifest.shard_path(f.manifest.shards[0]);
  const auto locs = ShardReader(shard).chunk_locations();
  auto bytes = test::read_file(shard);
  for (size_t i = 0; i < (*locs)[3].stored_bytes; ++i) bytes[(*locs)[3].offset + i] = 0x55;
  test::write_file(shard, bytes);
  auto o = opts(1000);
  o.shuffle = false;
  ShardLoader l(f.path(), "train", o);
  try {
    l.next();
    FAIL() << "a corrupt chunk must not go unnoticed";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(shard), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(l.next(), DataError) << "the error sticks";
}

TEST(data_loader, OpenErrorsNameTheFile) {
  Fixture f;
  // Missing manifest.
  try {
    ShardLoader l(f.path(), "test", opts(10));
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("test.manifest.json"), std::string::npos) << e.what();
  }
  // Too few images for the world and batch size.
  EXPECT_THROW(ShardLoader(f.path(), "train", opts(300, 0, 4, true)), DataError);
  // Manifest checksum disagrees with the shard's.
  Manifest m = f.manifest;
  m.shards[1].sha256 = std::string(64, '0');
  write_manifest(m.path, m);
  try {
    ShardLoader l(f.path(), "train", opts(10));
    FAIL();
  } catch (const ChecksumError& e) {
    EXPECT_NE(std::string(e.what()).find(m.shard_path(m.shards[1])), std::string::npos) << e.what();
  }
  // A shard deleted behind the manifest's back.
  write_manifest(f.manifest.path, f.manifest);
  fs::remove(f.manifest.shard_path(f.manifest.shards[2]));
  EXPECT_THROW(ShardLoader(f.path(), "train", opts(10)), DataError);
}

TEST(data_loader, ReportsWaitTime) {
  Fixture f;
  ShardLoader l(f.path(), "train", opts(10));
  epoch(l);
  EXPECT_GE(l.wait_seconds(), 0.0);
  EXPECT_LT(l.wait_seconds(), 5.0);
}

}  // namespace
}  // namespace agave::data
