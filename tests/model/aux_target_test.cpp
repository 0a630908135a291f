#include "model/aux_target.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace agave::model {
namespace {

// Every 2×2 block mean is exactly k + ½, where half up and half to even disagree for even k.
TEST(AuxTarget, RoundsBlockMeansHalfToEven) {
  const auto x = torch::tensor({0, 1, 2, 3,      //
                                0, 1, 2, 3,      //
                                1, 2, 254, 255,  //
                                2, 1, 255, 254},
                               torch::kUInt8)
                     .reshape({1, 1, 4, 4});
  // Blocks: [0 1;0 1] 0.5 → 0, [2 3;2 3] 2.5 → 2, [1 2;2 1] 1.5 → 2, [254 255;255 254] 254.5 →
  // 254. Rounding half up would give 1, 3, 2, 255.
  const auto expected = torch::tensor({0.f, 2.f, 2.f, 254.f}).reshape({1, 1, 2, 2});
  const auto y = aux_target(x, 2);
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(y, expected)) << y;
  EXPECT_TRUE(torch::equal(aux_target(x.to(torch::kFloat), 2), expected));
}

TEST(AuxTarget, RoundsOtherMeansToTheNearestInteger) {
  const auto x = torch::tensor({3, 4, 4, 4, 3, 3, 3, 4}, torch::kUInt8).reshape({2, 1, 2, 2});
  // 3.75 → 4 and 3.25 → 3, one image each.
  EXPECT_TRUE(torch::equal(aux_target(x, 1), torch::tensor({4.f, 3.f}).reshape({2, 1, 1, 1})));
}

// Against an integer reference of "nearest, ties to the even neighbour" on random images.
TEST(AuxTarget, MatchesAnIntegerHalfToEvenLoop) {
  torch::manual_seed(0);
  const auto x = torch::randint(0, 256, {2, 3, 32, 32}, torch::kUInt8);
  for (int64_t r : {16, 8, 4}) {
    const auto y = aux_target(x, r);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, r, r}));
    const int64_t k = 32 / r, area = k * k;
    auto a = x.accessor<uint8_t, 4>();
    auto b = y.accessor<float, 4>();
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < r; ++j) {
            int64_t sum = 0;
            for (int64_t u = 0; u < k; ++u)
              for (int64_t v = 0; v < k; ++v) sum += a[n][c][i * k + u][j * k + v];
            int64_t q = sum / area;
            const int64_t twice_rest = 2 * (sum % area);
            if (twice_rest > area || (twice_rest == area && q % 2 == 1)) ++q;
            ASSERT_EQ(b[n][c][i][j], static_cast<float>(q)) << "r=" << r << " at " << i << "," << j;
          }
  }
}

TEST(AuxTarget, FullResolutionIsTheImageAsFloat) {
  torch::manual_seed(1);
  const auto x = torch::randint(0, 256, {2, 3, 32, 32}, torch::kUInt8);
  const auto y = aux_target(x, 32);
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(y, x.to(torch::kFloat)));
}

TEST(AuxTarget, RejectsResolutionsThatDoNotDivideAndNon4dInput) {
  const auto x = torch::zeros({1, 1, 32, 32}, torch::kUInt8);
  EXPECT_THROW(aux_target(x, 3), c10::Error);
  EXPECT_THROW(aux_target(x, 0), c10::Error);
  EXPECT_THROW(aux_target(x, -4), c10::Error);
  EXPECT_THROW(aux_target(x, 64), c10::Error);
  EXPECT_THROW(aux_target(x.view({32, 32}), 16), c10::Error);
}

}  // namespace
}  // namespace agave::model
