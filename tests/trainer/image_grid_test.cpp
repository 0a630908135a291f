#include "trainer/image_grid.h"

#include <gtest/gtest.h>

#include "monitoring/png_image.h"
#include "tests/common/test_files.h"

namespace agave::trainer {
namespace {

TEST(ImageGrid, PlacesEveryImageAndUpscalesSmallRows) {
  auto big = torch::randint(0, 256, {3, 3, 8, 8}, torch::kUInt8);
  auto small = torch::randint(0, 256, {2, 3, 4, 4}, torch::kUInt8);
  const auto img = image_grid({big, small}, /*pad=*/1, /*min_size=*/1);
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.height, 2 * 9 + 1);
  EXPECT_EQ(img.width, 3 * 9 + 1);
  auto at = [&](int64_t y, int64_t x, int64_t c) {
    return img.pixels[(y * img.width + x) * img.channels + c];
  };
  // Image 2 of row 0 at its place, pixel for pixel.
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x)
      for (int64_t c = 0; c < 3; ++c)
        ASSERT_EQ(at(1 + y, 1 + 2 * 9 + x, c), big[2][c][y][x].item<uint8_t>());
  // Row 1 is nearest-neighbour upscaled ×2.
  EXPECT_EQ(at(10 + 5, 1 + 9 + 7, 1), small[1][1][2][3].item<uint8_t>());
  // The gap is white; the missing third image of row 1 too.
  EXPECT_EQ(at(0, 0, 0), 255);
  EXPECT_EQ(at(12, 1 + 2 * 9 + 3, 2), 255);
}

// Small images are scaled up by a whole factor to at least min_size pixels: 28 → 84.
TEST(ImageGrid, ScalesSmallImagesUpToTheMinimumSize) {
  auto x = torch::randint(0, 256, {2, 1, 28, 28}, torch::kUInt8);
  const auto img = image_grid({x}, /*pad=*/2, /*min_size=*/64);
  EXPECT_EQ(img.height, 84 + 4);
  EXPECT_EQ(img.width, 2 * 86 + 2);
  // Pixel (5, 7) of image 1 fills a 3×3 block.
  for (int64_t dy = 0; dy < 3; ++dy)
    for (int64_t dx = 0; dx < 3; ++dx)
      EXPECT_EQ(img.pixels[(2 + 5 * 3 + dy) * img.width + 2 + 86 + 7 * 3 + dx],
                x[1][0][5][7].item<uint8_t>());
  // 32×32 images: ×2.
  EXPECT_EQ(image_grid({torch::zeros({1, 3, 32, 32}, torch::kUInt8)}, 0, 64).height, 64);
}

TEST(PngImage, RoundTripsAndRejectsGarbage) {
  agave::testing::TempDir dir;
  monitoring::Image img{5, 7, 1, {}};
  for (int i = 0; i < 35; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 7));
  const std::string path = (dir.path() / "a.png").string();
  monitoring::write_png(path, img);
  const auto back = monitoring::read_png(path);
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.pixels, img.pixels);
  const std::string bad = dir.write("bad.png", "\x89PNG\r\n\x1a\n garbage");
  EXPECT_THROW(monitoring::read_png(bad), std::runtime_error);
  monitoring::Image wrong{2, 2, 3, {1, 2, 3}};
  EXPECT_THROW(monitoring::write_png(path, wrong), std::invalid_argument);
}

}  // namespace
}  // namespace agave::trainer
