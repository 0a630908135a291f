#include "data/aux_targets.h"

#include <stdexcept>
#include <string>

namespace agave::data {

torch::Tensor downsample_average(const torch::Tensor& x, int64_t resolution) {
  if (x.dim() != 4) {
    throw std::invalid_argument("downsample_average: expected N×C×H×W, got " +
                                std::to_string(x.dim()) + " dimensions");
  }
  const int64_t h = x.size(2), w = x.size(3);
  if (resolution <= 0 || h % resolution != 0 || w % resolution != 0) {
    throw std::invalid_argument("downsample_average: resolution " + std::to_string(resolution) +
                                " does not divide the image size " + std::to_string(h) + "×" +
                                std::to_string(w));
  }
  const int64_t kh = h / resolution, kw = w / resolution;
  // Block sums are exact in float32 (at most 255·H·W < 2^24), and so is the half-up rounding of
  // sum / k, computed as floor((2·sum + k) / (2·k)).
  const auto sums =
      torch::avg_pool2d(x.to(torch::kFloat32), {kh, kw}, {kh, kw}, {0, 0}, false, true, 1);
  const double k = static_cast<double>(kh * kw);
  auto y = torch::div(sums * 2 + k, 2 * k, "floor");
  return y.to(x.scalar_type());
}

torch::Tensor color_bin_index(const torch::Tensor& y, int64_t bins) {
  if (bins < 1 || bins > 256 || 256 % bins != 0) {
    throw std::invalid_argument("color_bin_index: bins must divide 256, got " +
                                std::to_string(bins));
  }
  const int64_t width = 256 / bins;
  auto v = y.is_floating_point() ? torch::round(y).to(torch::kInt64) : y.to(torch::kInt64);
  return torch::div(v.clamp(0, 255), width, "floor");
}

}  // namespace agave::data
