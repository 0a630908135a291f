// Per-example random numbers: a function of (seed, step, example, draw) only, so a batch split
// over ranks (or reordered, or laid out channels_last) draws exactly the same numbers.
#include <gtest/gtest.h>

#include "model/example_random.h"
#include "model/gaussian.h"
#include "model/layers.h"

namespace agave::model {
namespace {

torch::Tensor ids(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); }

TEST(ExampleRandom, KeysDependOnSeedStepAndExample) {
  const auto a = example_keys(7, 3, ids({0, 1, 2}));
  EXPECT_TRUE(torch::equal(a, example_keys(7, 3, ids({0, 1, 2}))));
  EXPECT_FALSE(torch::equal(a, example_keys(8, 3, ids({0, 1, 2}))));
  EXPECT_FALSE(torch::equal(a, example_keys(7, 4, ids({0, 1, 2}))));
  EXPECT_NE(a[0].item<int64_t>(), a[1].item<int64_t>());
  EXPECT_GE(a.min().item<int64_t>(), 0);
  EXPECT_LT(a.max().item<int64_t>(), int64_t{1} << 32);
}

TEST(ExampleRandom, ASplitBatchDrawsWhatTheWholeBatchDraws) {
  const auto keys = example_keys(1, 5, ids({10, 11, 12, 13}));
  const auto like = torch::zeros({4, 3, 5, 5});
  ExampleRandomScope whole(keys);
  const auto n = whole.normal_like(like);
  const auto m = whole.keep_mask_like(like, 0.5);
  torch::Tensor n_parts[2], m_parts[2];
  for (int r = 0; r < 2; ++r) {
    ExampleRandomScope part(keys.slice(0, 2 * r, 2 * r + 2));
    n_parts[r] = part.normal_like(like.slice(0, 0, 2));
    m_parts[r] = part.keep_mask_like(like.slice(0, 0, 2), 0.5);
  }
  EXPECT_TRUE(torch::equal(n, torch::cat({n_parts[0], n_parts[1]})));
  EXPECT_TRUE(torch::equal(m, torch::cat({m_parts[0], m_parts[1]})));
  // Reversed order: the numbers follow the example.
  ExampleRandomScope reversed(keys.flip(0));
  EXPECT_TRUE(torch::equal(reversed.normal_like(like), n.flip(0)));
}

TEST(ExampleRandom, DrawsInAScopeAreDistinctStreams) {
  ExampleRandomScope scope(example_keys(1, 0, ids({0, 1})));
  const auto like = torch::zeros({2, 1000});
  const auto a = scope.uniform_like(like);
  const auto b = scope.uniform_like(like);
  EXPECT_EQ(scope.draws(), 2);
  EXPECT_LT(torch::corrcoef(torch::stack({a.flatten(), b.flatten()}))[0][1].abs().item<double>(),
            0.05);
  EXPECT_LT(torch::corrcoef(torch::stack({a[0], a[1]}))[0][1].abs().item<double>(), 0.1);
}

TEST(ExampleRandom, DistributionsHaveTheirMoments) {
  ExampleRandomScope scope(example_keys(3, 1, torch::arange(64)));
  const auto like = torch::zeros({64, 16384});
  const auto z = scope.normal_like(like);
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 0.005);
  EXPECT_NEAR(z.std().item<double>(), 1.0, 0.005);
  EXPECT_NEAR((z > 1.96).to(torch::kDouble).mean().item<double>(), 0.025, 0.001);
  const auto u = scope.uniform_like(like);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 0.002);
  EXPECT_GE(u.min().item<double>(), 0.0);
  EXPECT_LT(u.max().item<double>(), 1.0);
  const auto keep = scope.keep_mask_like(like, 0.3);
  EXPECT_EQ(keep.scalar_type(), torch::kBool);
  EXPECT_NEAR(keep.to(torch::kDouble).mean().item<double>(), 0.7, 0.002);
}

TEST(ExampleRandom, MasksFollowTheLogicalLayoutNotTheMemoryLayout) {
  const auto keys = example_keys(2, 0, ids({4, 5}));
  const auto x = torch::randn({2, 8, 6, 6});
  torch::Tensor plain, last;
  {
    ExampleRandomScope s(keys);
    plain = s.keep_mask_like(x, 0.5);
  }
  {
    ExampleRandomScope s(keys);
    last = s.keep_mask_like(x.contiguous(at::MemoryFormat::ChannelsLast), 0.5);
  }
  EXPECT_TRUE(last.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(plain, last));
}

// On CPU, contiguous and channels_last tensors get their masks from a one-pass loop; any other
// layout from the tensor ops (the path GPUs take). Bit for bit the same, so the fast path
// changes no training run and CPU and GPU runs still draw alike.
TEST(ExampleRandom, TheOnePassCpuMasksAreTheTensorOpMasks) {
  const auto keys = example_keys(7, 3, ids({0, 1, 2, 9, 4}));
  const auto contiguous = torch::zeros({5, 6, 4, 3});
  const auto channels_last = contiguous.contiguous(at::MemoryFormat::ChannelsLast);
  const auto strided = torch::zeros({5, 3, 4, 6}).permute({0, 3, 2, 1});  // the tensor-op path
  ASSERT_FALSE(strided.is_contiguous());
  ASSERT_FALSE(strided.is_contiguous(at::MemoryFormat::ChannelsLast));
  const auto flat = torch::zeros({5, 37});
  const auto flat_strided = torch::zeros({37, 5}).t();
  auto mask = [&](const torch::Tensor& like, double p) {
    ExampleRandomScope s(keys);
    s.keep_mask_like(like, 0.3);  // a second stream, as in a forward pass
    return s.keep_mask_like(like, p);
  };
  auto scale = [&](const torch::Tensor& like, double p) {
    ExampleRandomScope s(keys);
    s.keep_mask_like(like, 0.3);
    return s.dropout_scale_like(like, p);
  };
  for (double p : {0.1, 0.5, 0.9}) {
    const auto reference = mask(strided, p);
    EXPECT_TRUE(torch::equal(mask(contiguous, p), reference)) << p;
    const auto last = mask(channels_last, p);
    EXPECT_TRUE(last.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::equal(last, reference)) << p;
    EXPECT_TRUE(torch::equal(mask(flat, p), mask(flat_strided, p))) << p;
    EXPECT_GT(reference.sum().item<int64_t>(), 0);
    for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      const auto want = scale(strided.to(dtype), p);
      ASSERT_EQ(want.scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(scale(contiguous.to(dtype), p), want)) << p;
      const auto got = scale(channels_last.to(dtype), p);
      EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
      EXPECT_TRUE(torch::equal(got, want)) << p;
      // The multiplier is 0 or 1 / (kept fraction), on exactly the kept elements.
      EXPECT_TRUE(torch::equal(want.ne(0), reference));
    }
  }
}

TEST(ExampleRandom, GaussianSamplesAndDropoutUseTheScopeAndTorchOutsideIt) {
  const DiagonalGaussian g(torch::zeros({2, 3, 4, 4}), torch::zeros({2, 3, 4, 4}));
  const auto keys = example_keys(9, 2, ids({0, 1}));
  torch::Tensor a, b;
  {
    ExampleRandomScope s(keys);
    a = g.sample();
  }
  {
    ExampleRandomScope s(keys);
    b = g.sample();
  }
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(g.sample(), g.sample()));  // torch's generator: fresh each time
  EXPECT_EQ(ExampleRandomScope::current(), nullptr);

  const auto x = torch::ones({2, 4, 8, 8});
  torch::Tensor d1, d2;
  {
    ExampleRandomScope s(keys);
    d1 = fast_dropout(x, 0.5, /*training=*/true);
  }
  {
    ExampleRandomScope s(keys.slice(0, 1, 2));
    d2 = fast_dropout(x.slice(0, 1, 2), 0.5, /*training=*/true);
  }
  EXPECT_TRUE(torch::equal(d1.slice(0, 1, 2), d2));
  // Kept units are scaled by 1/(1 − p), so the expectation is unchanged.
  EXPECT_NEAR(d1.mean().item<double>(), 1.0, 0.1);
  EXPECT_TRUE(torch::equal(fast_dropout(x, 0.5, /*training=*/false), x));
}

TEST(ExampleRandom, ADrawForTheWrongBatchSizeIsAnError) {
  ExampleRandomScope scope(example_keys(1, 0, ids({0, 1})));
  EXPECT_THROW(scope.normal_like(torch::zeros({3, 2})), c10::Error);
  // Every path: the one-pass CPU masks (contiguous, channels_last) and the tensor ops.
  EXPECT_THROW(scope.keep_mask_like(torch::zeros({3, 2}), 0.5), c10::Error);
  EXPECT_THROW(scope.dropout_scale_like(torch::zeros({3, 2}), 0.5), c10::Error);
  EXPECT_THROW(scope.dropout_scale_like(
                   torch::zeros({3, 4, 2, 2}).contiguous(at::MemoryFormat::ChannelsLast), 0.5),
               c10::Error);
  EXPECT_THROW(scope.keep_mask_like(torch::zeros({2, 3}).t(), 0.5), c10::Error);
}

}  // namespace
}  // namespace agave::model
