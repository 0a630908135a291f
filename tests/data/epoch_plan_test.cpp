// The epoch plan's invariants: what resuming at another world size and the trainer's lock step
// rest on (data/epoch_plan.h).
#include "data/epoch_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <stdexcept>
#include <vector>

namespace agave::data {
namespace {

// A split of `total` images in chunks of `chunk` (the last one partial), as a loader cuts a
// one-shard split.
std::vector<ChunkSpan> chunks_of(int64_t total, int64_t chunk) {
  std::vector<ChunkSpan> out;
  for (int64_t first = 0; first < total; first += chunk) {
    out.push_back(ChunkSpan{first, std::min(chunk, total - first)});
  }
  return out;
}

// 1000 images in chunks of 32, windows of 4 chunks.
EpochPlan plan(int64_t world, int64_t batch, bool drop_last, uint64_t seed = 1234,
               bool shuffle = true) {
  return EpochPlan(chunks_of(1000, 32),
                   EpochPlanOptions{seed, shuffle, 4, world, batch, drop_last});
}

// Every image each rank reads in `epoch`, step by step.
std::vector<int64_t> all_reads(const EpochPlan& p, int64_t world, int64_t epoch) {
  std::vector<int64_t> out;
  for (int64_t r = 0; r < world; ++r) {
    for (int64_t j = 0; j < p.batches(r); ++j) {
      const auto ex = p.examples(epoch, r, j);
      out.insert(out.end(), ex.begin(), ex.end());
    }
  }
  return out;
}

TEST(EpochPlanTest, WithoutDropLastEveryImageIsReadExactlyOnceAtAnyWorldSize) {
  for (int64_t world = 1; world <= 7; ++world) {
    const EpochPlan p = plan(world, 24, false);
    std::vector<int64_t> reads = all_reads(p, world, 3);
    std::sort(reads.begin(), reads.end());
    std::vector<int64_t> all(1000);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(reads, all) << "world " << world;
    int64_t images = 0;
    for (int64_t r = 0; r < world; ++r) images += p.images(r);
    EXPECT_EQ(images, 1000) << "world " << world;
  }
}

TEST(EpochPlanTest, WithDropLastEveryRankReadsTheSameFullBatchesAndTheTailIsDropped) {
  for (int64_t world = 1; world <= 7; ++world) {
    const EpochPlan p = plan(world, 24, true);
    const int64_t g = 24 * world, full = 1000 / g;
    for (int64_t r = 0; r < world; ++r) {
      EXPECT_EQ(p.batches(r), full);
      EXPECT_EQ(p.images(r), full * 24);
    }
    // What is read is the order's first full·G positions, each once; the rest is dropped.
    EpochOrder o;
    p.order(3, o);
    std::vector<int64_t> reads = all_reads(p, world, 3);
    std::sort(reads.begin(), reads.end());
    std::vector<int64_t> want(o.order.begin(), o.order.begin() + full * g);
    std::sort(want.begin(), want.end());
    EXPECT_EQ(reads, want) << "world " << world;
  }
}

TEST(EpochPlanTest, AGlobalStepCoversTheSameImagesInTheSameOrderAtAnyWorldSize) {
  // Global batch 24 as 1×24, 2×12, 3×8, 4×6, 6×4, 8×3: the ranks' batches of step j, laid end
  // to end in rank order, are the one-rank batch j (so a resume at another world size only
  // needs the step number, ShardLoader::map_position).
  for (const bool drop_last : {true, false}) {
    const EpochPlan one = plan(1, 24, drop_last);
    for (const int64_t world : {2, 3, 4, 6, 8}) {
      const EpochPlan p = plan(world, 24 / world, drop_last);
      ASSERT_EQ(p.global_batch(), 24);
      ASSERT_EQ(p.batches(0), one.batches(0));
      for (int64_t j = 0; j < one.batches(0); ++j) {
        std::vector<int64_t> step;
        for (int64_t r = 0; r < world; ++r) {
          const auto ex = p.examples(2, r, j);
          step.insert(step.end(), ex.begin(), ex.end());
        }
        EXPECT_EQ(step, one.examples(2, 0, j)) << "world " << world << ", step " << j;
      }
    }
  }
}

TEST(EpochPlanTest, TheOrderDependsOnSeedAndEpochAloneAndNotOnTheWorldSize) {
  EpochOrder a, b;
  plan(1, 24, true).order(5, a);
  plan(6, 3, false).order(5, b);
  EXPECT_EQ(a.order, b.order);
  EXPECT_EQ(a.perm, b.perm);
  plan(1, 24, true).order(6, b);
  EXPECT_NE(a.order, b.order);
  plan(1, 24, true, 1235).order(5, b);
  EXPECT_NE(a.order, b.order);
  // Each epoch is a permutation of the split.
  std::vector<int64_t> sorted = a.order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(1000);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
}

TEST(EpochPlanTest, TheOrderIsPinnedAcrossVersions) {
  // Checkpoints store a position in this order: a change here makes resumed runs see other
  // images. These values are the loader's from before the plan moved out of it.
  EpochOrder o;
  plan(1, 24, true).order(0, o);
  const std::vector<int64_t> head(o.order.begin(), o.order.begin() + 8);
  EXPECT_EQ(head, (std::vector<int64_t>{786, 896, 782, 168, 909, 339, 777, 770}));
  plan(1, 24, true).order(7, o);
  const std::vector<int64_t> head7(o.order.begin(), o.order.begin() + 8);
  EXPECT_EQ(head7, (std::vector<int64_t>{544, 522, 572, 541, 535, 920, 713, 571}));
}

TEST(EpochPlanTest, WithoutShuffleTheOrderIsTheFileOrder) {
  EpochOrder o;
  plan(3, 8, false, 1234, false).order(4, o);
  std::vector<int64_t> all(1000);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(o.order, all);
}

TEST(EpochPlanTest, AWindowHoldsExactlyTheImagesOfItsChunks) {
  const EpochPlan p = plan(2, 16, false);
  EpochOrder o;
  p.order(1, o);
  ASSERT_EQ(o.starts.size(), 8u + 1u);  // 32 chunks, 4 per window (the last chunk partial)
  for (size_t w = 0; w + 1 < o.starts.size(); ++w) {
    std::set<int64_t> in_chunks;
    const auto [c0, c1] = p.window(o, w);
    for (size_t c = c0; c < c1; ++c) {
      const ChunkSpan& s = p.chunks()[static_cast<size_t>(o.perm[c])];
      for (int64_t i = 0; i < s.count; ++i) in_chunks.insert(s.first + i);
    }
    const std::set<int64_t> in_window(o.order.begin() + o.starts[w],
                                      o.order.begin() + o.starts[w + 1]);
    EXPECT_EQ(in_window, in_chunks) << "window " << w;
    // offset[p] is the image's place in the window's chunks laid end to end.
    for (int64_t at = o.starts[w]; at < o.starts[w + 1]; ++at) {
      int64_t left = o.offset[static_cast<size_t>(at)];
      for (size_t c = c0;; ++c) {
        const ChunkSpan& s = p.chunks()[static_cast<size_t>(o.perm[c])];
        if (left < s.count) {
          EXPECT_EQ(o.order[static_cast<size_t>(at)], s.first + left);
          break;
        }
        left -= s.count;
      }
    }
  }
}

TEST(EpochPlanTest, ALastPartialBatchIsCutIntoContiguousPiecesTheFirstOnesLonger) {
  // 1000 = 41·24 + 16. 4 ranks of 6: the rest of 16 gives 4 each; 3 ranks of 8: 6, 5, 5. 7 ranks
  // of 1 (1000 = 142·7 + 6): one each for ranks 0-5, none for rank 6.
  const EpochPlan four = plan(4, 6, false);
  for (int64_t r = 0; r < 4; ++r) {
    EXPECT_EQ(four.positions(r, 41), std::make_pair(int64_t{984} + 4 * r, int64_t{4}));
  }
  const EpochPlan three = plan(3, 8, false);
  EXPECT_EQ(three.positions(0, 41), std::make_pair(int64_t{984}, int64_t{6}));
  EXPECT_EQ(three.positions(1, 41), std::make_pair(int64_t{990}, int64_t{5}));
  EXPECT_EQ(three.positions(2, 41), std::make_pair(int64_t{995}, int64_t{5}));
  const EpochPlan seven = plan(7, 1, false);  // 1000 = 142·7 + 6
  EXPECT_EQ(seven.batches(0), 143);
  EXPECT_EQ(seven.batches(5), 143);
  EXPECT_EQ(seven.batches(6), 142);  // its piece of the last batch is empty
  EXPECT_EQ(seven.images(6), 142);
  EXPECT_EQ(plan(7, 1, true).batches(0), 142);
}

TEST(EpochPlanTest, WindowChunksRoundUpAndRefuseNonsense) {
  EXPECT_EQ(EpochPlan::window_chunks(4096, 32), 128);
  EXPECT_EQ(EpochPlan::window_chunks(100, 32), 4);
  EXPECT_EQ(EpochPlan::window_chunks(1, 32), 1);
  EXPECT_EQ(EpochPlan::window_chunks(0, 32), 1);
  EXPECT_THROW(EpochPlan(chunks_of(10, 2), EpochPlanOptions{0, true, 1, 0, 1, true}),
               std::invalid_argument);
  EXPECT_THROW(EpochPlan(chunks_of(10, 2), EpochPlanOptions{0, true, 1, 1, 0, true}),
               std::invalid_argument);
}

}  // namespace
}  // namespace agave::data
