#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <tuple>

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
void check_batch(const Batch& b, ImageShape shape = kShape) {
  ASSERT_EQ(b.images.dtype(), torch::kUInt8);
  ASSERT_EQ(b.images.dim(), 4);
  ASSERT_EQ(b.images.size(1), shape.channels);
  ASSERT_EQ(b.images.size(2), shape.height);
  ASSERT_EQ(b.images.size(3), shape.width);
  const int64_t bytes = shape.channels * shape.height * shape.width;
  const int64_t n = b.images.size(0);
  ASSERT_EQ(b.labels.size(0), n);
  ASSERT_EQ(b.indices.size(0), n);
  const uint8_t* p = b.images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = b.indices[i].item<int64_t>();
    ASSERT_EQ(b.labels[i].item<int64_t>(), test::label_of(g));
    for (int64_t k = 0; k < bytes; ++k) {
      ASSERT_EQ(p[i * bytes + k], test::pixel(g, k)) << "image " << g << " byte " << k;
    }
  }
}

// Indices of one epoch, batch by batch.
std::vector<std::vector<int64_t>> epoch(ShardLoader& l) {
  std::vector<std::vector<int64_t>> out;
  while (auto b = l.next()) {
    check_batch(*b, l.image_shape());
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

TEST(ShardLoader, RanksCoverEveryImageExactlyOncePerEpoch) {
  Fixture f;
  for (int64_t world = 1; world <= 4; ++world) {
    for (int64_t e = 0; e < 2; ++e) {
      std::vector<int64_t> all;
      for (int64_t r = 0; r < world; ++r) {
        ShardLoader l(f.path(), "train", opts(48, r, world));
        l.restore({e, 0});
        const auto batches = epoch(l);
        const auto mine = flat(batches);
        // 1000 = K·G + rest, G = 48·world: K full batches of 48, then the rest cut into
        // contiguous pieces, the first (rest mod world) ranks one image more. So rank r holds
        // 1000 / world images, one more for the first 1000 mod world ranks.
        EXPECT_EQ(static_cast<int64_t>(mine.size()), 1000 / world + (r < 1000 % world ? 1 : 0));
        EXPECT_EQ(l.images_per_epoch(), static_cast<int64_t>(mine.size()));
        EXPECT_EQ(l.batches_per_epoch(), static_cast<int64_t>(batches.size()));
        const int64_t full = 1000 / (48 * world);
        EXPECT_EQ(static_cast<int64_t>(batches.size()), full + 1) << "world " << world;
        for (int64_t j = 0; j < full; ++j) EXPECT_EQ(batches[j].size(), 48u);
        all.insert(all.end(), mine.begin(), mine.end());
      }
      std::sort(all.begin(), all.end());
      ASSERT_EQ(all.size(), 1000u) << "world " << world;
      for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(all[i], i) << "world " << world;
    }
  }
}

TEST(ShardLoader, DropLastGivesEqualFullBatchesOnDisjointRanks) {
  Fixture f;
  for (int64_t world = 1; world <= 4; ++world) {
    std::set<int64_t> seen;
    for (int64_t r = 0; r < world; ++r) {
      ShardLoader l(f.path(), "train", opts(64, r, world, true));
      const auto batches = epoch(l);
      EXPECT_EQ(static_cast<int64_t>(batches.size()), 1000 / (world * 64));
      EXPECT_EQ(l.batches_per_epoch(), static_cast<int64_t>(batches.size()));
      EXPECT_EQ(l.global_batch_size(), world * 64);
      for (const auto& b : batches) {
        EXPECT_EQ(b.size(), 64u);
        for (int64_t g : b) EXPECT_TRUE(seen.insert(g).second) << "image " << g << " twice";
      }
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), 1000 / (world * 64) * world * 64);
  }
}

// Global batch j of n ranks with batches of b (rank 0's batch j, then rank 1's, ...) against
// batch j of one rank with batches of n·b.
void expect_same_global_batches(const Fixture& f, int64_t world, int64_t b, bool drop_last) {
  ShardLoader one(f.path(), "train", opts(world * b, 0, 1, drop_last));
  std::vector<std::unique_ptr<ShardLoader>> ranks;
  for (int64_t r = 0; r < world; ++r) {
    ranks.push_back(std::make_unique<ShardLoader>(f.path(), "train", opts(b, r, world, drop_last)));
  }
  for (int64_t e = 0; e < 2; ++e) {
    const auto reference = epoch(one);
    std::vector<std::vector<std::vector<int64_t>>> per_rank;
    for (auto& l : ranks) per_rank.push_back(epoch(*l));
    for (size_t j = 0; j < reference.size(); ++j) {
      std::vector<int64_t> joined;
      for (const auto& batches : per_rank) {
        // A rank may have no piece of a short final batch (not with 1000 images here).
        if (j < batches.size()) joined.insert(joined.end(), batches[j].begin(), batches[j].end());
      }
      auto want = reference[j];
      EXPECT_EQ(joined, want) << "world " << world << " epoch " << e << " batch " << j
                              << ": rank pieces in rank order make up the 1-rank batch";
      std::sort(joined.begin(), joined.end());
      std::sort(want.begin(), want.end());
      ASSERT_EQ(joined, want) << "world " << world << " epoch " << e << " batch " << j;
    }
    for (const auto& batches : per_rank) EXPECT_LE(batches.size(), reference.size());
  }
}

TEST(ShardLoader, GlobalBatchesDoNotDependOnWorldSize) {
  Fixture f;
  for (bool drop_last : {true, false}) {
    expect_same_global_batches(f, 2, 24, drop_last);  // 2 × 24 against 1 × 48
    expect_same_global_batches(f, 4, 24, drop_last);  // 4 × 24 against 1 × 96
    expect_same_global_batches(f, 3, 7, drop_last);   // 21 does not divide 1000 or a chunk
  }
  // The epoch order itself does not depend on the batch size either.
  ShardLoader small(f.path(), "train", opts(7)), large(f.path(), "train", opts(300));
  EXPECT_EQ(flat(epoch(small)), flat(epoch(large)));
}

TEST(ShardLoader, ShortFinalBatchIsCutIntoContiguousPieces) {
  // 1000 = 2·(4·100) + 200 with 4 ranks of 100: the last global batch's 200 images go 50 per
  // rank; with 3 ranks of 110 (G 330): 10 left, pieces 4, 3, 3.
  Fixture f;
  for (auto [world, b, last] : std::vector<std::tuple<int64_t, int64_t, std::vector<size_t>>>{
           {4, 100, {50, 50, 50, 50}}, {3, 110, {4, 3, 3}}}) {
    for (int64_t r = 0; r < world; ++r) {
      ShardLoader l(f.path(), "train", opts(b, r, world));
      const auto batches = epoch(l);
      ASSERT_FALSE(batches.empty());
      EXPECT_EQ(batches.back().size(), last[r]) << "world " << world << " rank " << r;
    }
  }
  // 6 ranks of 166 (G 996): 4 left, so ranks 4 and 5 have no final batch.
  for (int64_t r = 0; r < 6; ++r) {
    ShardLoader l(f.path(), "train", opts(166, r, 6));
    EXPECT_EQ(l.batches_per_epoch(), r < 4 ? 2 : 1) << "rank " << r;
    EXPECT_EQ(static_cast<int64_t>(epoch(l).size()), l.batches_per_epoch());
  }
}

TEST(ShardLoader, ShuffleIsSeededPerEpochAndMixesShards) {
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

TEST(ShardLoader, OrderDoesNotDependOnPrefetchDepth) {
  Fixture f;
  auto o1 = opts(33, 1, 3);
  o1.prefetch = 1;
  auto o8 = o1;
  o8.prefetch = 8;
  ShardLoader a(f.path(), "train", o1), b(f.path(), "train", o8);
  EXPECT_EQ(epoch(a), epoch(b));
}

TEST(ShardLoader, RestoreContinuesExactly) {
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
  EXPECT_THROW(l.restore({0, 1000}), io::DataError);
}

TEST(ShardLoader, MapPositionRoundsDownToTheFirstUnseenImage) {
  using P = LoaderPosition;
  EXPECT_EQ(ShardLoader::map_position({3, 7}, 64, 64), (P{3, 7}));
  EXPECT_EQ(ShardLoader::map_position({3, 7}, 64, 128), (P{3, 3}));  // image 448 is in batch 3
  EXPECT_EQ(ShardLoader::map_position({3, 8}, 64, 128), (P{3, 4}));  // 512: a batch boundary
  EXPECT_EQ(ShardLoader::map_position({3, 7}, 128, 64), (P{3, 14}));
  EXPECT_EQ(ShardLoader::map_position({1, 5}, 48, 72), (P{1, 3}));  // 240 = 3·72 + 24
  EXPECT_EQ(ShardLoader::map_position({2, 0}, 48, 72), (P{2, 0}));
  EXPECT_THROW(ShardLoader::map_position({0, 1}, 0, 64), std::invalid_argument);
  EXPECT_THROW(ShardLoader::map_position({0, 1}, 64, 0), std::invalid_argument);
  EXPECT_THROW(ShardLoader::map_position({-1, 1}, 64, 64), std::invalid_argument);
  EXPECT_THROW(ShardLoader::map_position({0, -1}, 64, 64), std::invalid_argument);
}

// A run on 2 ranks × 20 stops after `cut` batches and resumes on `world` ranks × `b`: the
// resumed epoch, added to what the first run consumed, covers the epoch, re-seeing fewer than
// one new global batch of images.
TEST(ShardLoader, ResumeOnAnotherWorldSizeSkipsNothing) {
  Fixture f;
  for (bool drop_last : {true, false}) {
    for (auto [world, b] : std::vector<std::pair<int64_t, int64_t>>{{3, 20}, {1, 40}, {4, 9}}) {
      for (int64_t cut : {0, 1, 7, 12}) {
        std::multiset<int64_t> seen;
        for (int64_t r = 0; r < 2; ++r) {
          ShardLoader l(f.path(), "train", opts(20, r, 2, drop_last));
          for (int64_t i = 0; i < cut; ++i) {
            const auto batch = l.next();
            ASSERT_TRUE(batch);
            for (int64_t k = 0; k < batch->indices.numel(); ++k) {
              seen.insert(batch->indices[k].item<int64_t>());
            }
          }
          EXPECT_EQ(l.position(), (LoaderPosition{0, cut}));
        }
        const LoaderPosition p = ShardLoader::map_position({0, cut}, 40, world * b);
        std::multiset<int64_t> again;
        for (int64_t r = 0; r < world; ++r) {
          ShardLoader l(f.path(), "train", opts(b, r, world, drop_last));
          l.restore(p);
          for (int64_t g : flat(epoch(l))) {
            if (seen.count(g) > 0) again.insert(g);
            seen.insert(g);
          }
        }
        const std::string what = "resume on " + std::to_string(world) + " x " + std::to_string(b) +
                                 " after " + std::to_string(cut) +
                                 (drop_last ? " (drop_last)" : "");
        EXPECT_LT(static_cast<int64_t>(again.size()), world * b) << what;
        if (cut * 40 % (world * b) == 0) {
          EXPECT_TRUE(again.empty()) << what;
        }
        if (!drop_last) {
          std::set<int64_t> distinct(seen.begin(), seen.end());
          EXPECT_EQ(distinct.size(), 1000u) << what;
        } else {
          // Only images past the last full batch of the new size may be left out.
          std::set<int64_t> distinct(seen.begin(), seen.end());
          EXPECT_GE(static_cast<int64_t>(distinct.size()), 1000 / (world * b) * world * b) << what;
        }
      }
    }
  }
}

// Image sizes that are whole cache lines (copied with streaming stores where the CPU has them)
// and that are not (slots at every alignment).
TEST(ShardLoader, ImagesOfAnySizeArriveIntact) {
  for (ImageShape shape : {ImageShape{3, 8, 8}, ImageShape{1, 10, 10}, ImageShape{3, 32, 32}}) {
    TempDir dir;
    test::write_synthetic_split(dir.path().string(), "train", {300, 200}, shape, 16);
    for (int64_t world : {1, 3}) {
      size_t images = 0;
      for (int64_t r = 0; r < world; ++r) {
        ShardLoader l(dir.path().string(), "train", opts(20, r, world));
        images += flat(epoch(l)).size();  // epoch() checks every image's bytes
      }
      EXPECT_EQ(images, 500u) << shape.channels << "x" << shape.height << "x" << shape.width;
    }
  }
}

TEST(ShardLoader, ChunksLargerThanBatches) {
  // Chunks of 1500 images, windows of two chunks, batches of 100: batches straddle windows and
  // every rank takes images from every chunk.
  TempDir dir;
  test::write_synthetic_split(dir.path().string(), "train", {2600, 1400}, kShape, 1500);
  for (int64_t world : {1, 2, 5}) {
    size_t images = 0;
    for (int64_t r = 0; r < world; ++r) {
      auto o = opts(100, r, world);
      o.shuffle_window = 3000;
      ShardLoader l(dir.path().string(), "train", o);
      images += flat(epoch(l)).size();  // epoch() checks every image's bytes
    }
    EXPECT_EQ(images, 4000u) << "world " << world;
  }
}

// Shards that other writers store in ways the loader cannot read straight from the file go
// through HDF5 instead: chunked with the shuffle filter before deflate (same chunks, so the same
// batches), and contiguous (other blocks, so another order, but every image once).
TEST(ShardLoader, ShardsWithoutDirectAccessAreReadThroughHdf5) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py/numpy (python3-h5py)";
  Fixture direct, other;
  const std::string script =
      "import h5py, sys\n"
      "for path, how in zip(sys.argv[1::2], sys.argv[2::2]):\n"
      "    with h5py.File(path, 'r') as f:\n"
      "        x, y, attrs = f['images'][()], f['labels'][()], dict(f.attrs)\n"
      "    with h5py.File(path, 'w') as f:\n"
      "        if how == 'contiguous':\n"
      "            f.create_dataset('images', data=x)\n"
      "        else:\n"
      "            f.create_dataset('images', data=x, chunks=(32,) + x.shape[1:],\n"
      "                             shuffle=True, compression='gzip')\n"
      "        f.create_dataset('labels', data=y)\n"
      "        for k, v in attrs.items():\n"
      "            f.attrs[k] = v\n";
  test::write_file(other.dir / "rewrite.py", std::vector<uint8_t>(script.begin(), script.end()));
  const Manifest& m = other.manifest;
  auto rewrite = [&](size_t shard, const std::string& how) {
    std::string out;
    ASSERT_EQ(test::run_command("/usr/bin/python3 " + (other.dir / "rewrite.py") + " " +
                                    m.shard_path(m.shards[shard]) + " " + how,
                                &out),
              0)
        << out;
    ASSERT_FALSE(ShardReader(m.shard_path(m.shards[shard])).chunk_locations()) << how;
  };
  rewrite(0, "shuffle");
  rewrite(1, "shuffle");
  for (int64_t r = 0; r < 2; ++r) {
    ShardLoader a(direct.path(), "train", opts(50, r, 2)), b(other.path(), "train", opts(50, r, 2));
    for (int e = 0; e < 2; ++e) EXPECT_EQ(epoch(a), epoch(b)) << "rank " << r << " epoch " << e;
  }
  rewrite(2, "contiguous");
  std::vector<int64_t> all;
  for (int64_t r = 0; r < 2; ++r) {
    ShardLoader l(other.path(), "train", opts(50, r, 2));
    const auto mine = flat(epoch(l));  // epoch() checks every image's bytes
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 1000u);
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(all[i], i);
}

// Shards evicted from the page cache: the loader's copies fault pages in from the disk, which
// turns on its read-ahead of the next window (madvise); the batches stay the same.
TEST(ShardLoader, ColdPageCacheGivesTheSameBatches) {
  TempDir dir;
  const Manifest m =
      test::write_synthetic_split(dir.path().string(), "train", {30000, 30000}, kShape, 256);
  auto o = opts(500, 1, 2);
  o.shuffle_window = 4096;
  std::vector<std::vector<int64_t>> e0;
  {
    ShardLoader warm(dir.path().string(), "train", o);
    e0 = epoch(warm);
  }
  ShardLoader cold(dir.path().string(), "train", o);
  // Opening a shard reads much of a small file into the cache: evict it after that (pages the
  // loader has mapped already stay), then start over.
  cold.next();
  for (const auto& s : m.shards) {
    const int fd = ::open(m.shard_path(s).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::fdatasync(fd);  // dirty pages cannot be dropped
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  cold.restore({0, 0});
  EXPECT_EQ(epoch(cold), e0);
}

TEST(ShardLoader, TruncatedShardSurfacesAsErrorFromNext) {
  Fixture f;
  const std::string shard = f.manifest.shard_path(f.manifest.shards[1]);
  auto o = opts(100, 1, 2);
  ShardLoader l(f.path(), "train", o);
  fs::resize_file(shard, fs::file_size(shard) / 2);
  l.restore({0, 0});  // drop whatever was read before the file was cut
  try {
    while (l.next()) {
    }
    FAIL() << "a truncated shard must not go unnoticed";
  } catch (const io::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(shard), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("file ends early"), std::string::npos) << e.what();
  }
}

TEST(ShardLoader, GzipShardsYieldTheSameBatches) {
  Fixture raw(0), gz(6);
  ShardLoader a(raw.path(), "train", opts(50, 0, 2)), b(gz.path(), "train", opts(50, 0, 2));
  EXPECT_EQ(epoch(a), epoch(b));
}

TEST(ShardLoader, CorruptChunkSurfacesAsErrorFromNext) {
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
  } catch (const io::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(shard), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(l.next(), io::DataError) << "the error sticks";
}

TEST(ShardLoader, OpenErrorsNameTheFile) {
  Fixture f;
  // Missing manifest.
  try {
    ShardLoader l(f.path(), "test", opts(10));
    FAIL();
  } catch (const io::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("test.manifest.json"), std::string::npos) << e.what();
  }
  // Too few images for the world and batch size.
  EXPECT_THROW(ShardLoader(f.path(), "train", opts(300, 0, 4, true)), io::DataError);
  // Manifest checksum disagrees with the shard's.
  Manifest m = f.manifest;
  m.shards[1].sha256 = std::string(64, '0');
  write_manifest(m.path, m);
  try {
    ShardLoader l(f.path(), "train", opts(10));
    FAIL();
  } catch (const io::ChecksumError& e) {
    EXPECT_NE(std::string(e.what()).find(m.shard_path(m.shards[1])), std::string::npos) << e.what();
  }
  // A shard deleted behind the manifest's back.
  write_manifest(f.manifest.path, f.manifest);
  fs::remove(f.manifest.shard_path(f.manifest.shards[2]));
  EXPECT_THROW(ShardLoader(f.path(), "train", opts(10)), io::DataError);
}

TEST(ShardLoader, ReportsWaitTime) {
  Fixture f;
  ShardLoader l(f.path(), "train", opts(10));
  epoch(l);
  EXPECT_GE(l.wait_seconds(), 0.0);
  EXPECT_LT(l.wait_seconds(), 5.0);
}

}  // namespace
}  // namespace agave::data
