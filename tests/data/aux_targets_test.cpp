#include <gtest/gtest.h>

#include <cmath>

#include "data/aux_targets.h"

namespace agave::data {
namespace {

TEST(data_aux, DownsampleRoundsHalfUpAndKeepsDtype) {
  auto x = torch::tensor({1, 2, 3, 4, 0, 0, 0, 1, 255, 255, 254, 254, 0, 1, 0, 1}, torch::kUInt8)
               .reshape({1, 1, 4, 4});
  // 2×2 blocks: [1 2;0 0]→0.75→1, [3 4;0 1]→2→2, [255 255;0 1]→127.75→128, [254 254;0 1]→127.25→127
  const auto y = downsample_average(x, 2);
  EXPECT_EQ(y.dtype(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(y, torch::tensor({1, 2, 128, 127}, torch::kUInt8).reshape({1, 1, 2, 2})))
      << y;
  const auto yf = downsample_average(x.to(torch::kFloat32), 2);
  EXPECT_EQ(yf.dtype(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(yf.to(torch::kUInt8), y));
  // Exactly half goes up: mean 2.5 → 3.
  auto h = torch::tensor({2, 3, 2, 3}, torch::kUInt8).reshape({1, 1, 2, 2});
  EXPECT_EQ(downsample_average(h, 1).item<uint8_t>(), 3);
  EXPECT_TRUE(torch::equal(downsample_average(x, 4), x));
  EXPECT_THROW(downsample_average(x, 3), std::invalid_argument);
  EXPECT_THROW(downsample_average(x.reshape({16}), 2), std::invalid_argument);
}

TEST(data_aux, DownsampleMatchesANaiveLoop) {
  torch::manual_seed(0);
  const auto x = torch::randint(0, 256, {3, 3, 32, 32}, torch::kUInt8);
  for (int64_t r : {16, 8, 4}) {
    const auto y = downsample_average(x, r);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{3, 3, r, r}));
    const int64_t k = 32 / r;
    auto a = x.accessor<uint8_t, 4>();
    auto b = y.accessor<uint8_t, 4>();
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < r; ++j) {
            int64_t s = 0;
            for (int64_t u = 0; u < k; ++u)
              for (int64_t v = 0; v < k; ++v) s += a[n][c][i * k + u][j * k + v];
            const int64_t expect = (2 * s + k * k) / (2 * k * k);
            ASSERT_EQ(b[n][c][i][j], expect) << r << " " << n << c << i << j;
          }
  }
}

TEST(data_aux, ColorBinIndex) {
  const auto y = torch::tensor({0, 1, 63, 64, 127, 128, 254, 255}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(color_bin_index(y, 256), y.to(torch::kInt64)));
  EXPECT_TRUE(
      torch::equal(color_bin_index(y, 4), torch::tensor({0, 0, 0, 1, 1, 2, 3, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(color_bin_index(y.to(torch::kFloat32), 32),
                           torch::div(y.to(torch::kInt64), 8, "floor")));
  EXPECT_EQ(color_bin_index(y, 1).max().item<int64_t>(), 0);
  EXPECT_THROW(color_bin_index(y, 3), std::invalid_argument);
  EXPECT_THROW(color_bin_index(y, 512), std::invalid_argument);
}

}  // namespace
}  // namespace agave::data
