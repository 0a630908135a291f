#include "model/aux_target.h"

namespace agave::model {

torch::Tensor aux_target(const torch::Tensor& x, int64_t resolution) {
  TORCH_CHECK(x.dim() == 4, "aux_target: expected x of shape N×C×H×W, got ", x.sizes());
  const int64_t h = x.size(2), w = x.size(3);
  TORCH_CHECK(resolution >= 1 && h % resolution == 0 && w % resolution == 0,
              "aux_target: resolution ", resolution, " must divide the image size ", h, "×", w);
  auto xf = x.to(torch::kFloat);
  const int64_t kh = h / resolution, kw = w / resolution;
  if (kh == 1 && kw == 1) return xf;
  // Integer pixels keep y on the pixel grid the color-bin likelihood scores.
  return torch::round(torch::avg_pool2d(xf, {kh, kw}));
}

}  // namespace agave::model
