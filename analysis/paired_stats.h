#pragma once
// The statistics of a comparison between runs on the same test images: the mean of a column, the
// mean paired difference with its paired standard error, and how the per-seed differences spread
// across seeds. Plain numbers in, plain numbers out, so each can be checked by hand.
#include <cstdint>
#include <vector>

namespace agave::analysis {

// A mean and its standard error over `n` values (the sample standard deviation, n − 1, over √n;
// 0 for fewer than two values; NaN mean for none).
struct MeanError {
  double mean = 0;
  double stderr_of_mean = 0;
  int64_t n = 0;
};

// Over the finite values of `v` (NaN marks a number an image does not have, e.g. the latent use
// of a PixelCNN alone).
MeanError mean_error(const std::vector<double>& v);

// b − a image by image, over the images where both are finite: its mean and its paired standard
// error, which, unlike the two unpaired errors, leaves out what the images share (a hard image is
// hard for both). a and b are the same images in the same order (analysis/comparison.h checks).
MeanError paired_difference(const std::vector<double>& a, const std::vector<double>& b);

// One difference per seed, summarized across seeds: its mean and the standard error across
// seeds (the seed-to-seed noise, which a per-seed paired error does not see), the spread, and
// how many seeds have the sign of the mean (a zero difference agrees with none).
struct SeedSpread {
  MeanError across;
  double min = 0, max = 0;
  int64_t agreeing = 0;  // seeds whose difference has the mean's sign
};

SeedSpread across_seeds(const std::vector<double>& per_seed);

}  // namespace agave::analysis
