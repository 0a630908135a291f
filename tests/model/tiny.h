#pragma once
// Small AGAVE configurations that run in well under a second per pass on a laptop CPU.
#include <torch/torch.h>

#include "model/options.h"

namespace agave::model::testing {

inline AgaveOptions tiny_options(int64_t channels = 3, int64_t size = 8, int64_t latent_res = 4,
                                 int64_t aux_res = 4) {
  return AgaveOptions()
      .image_channels(channels)
      .image_size(size)
      .vae(VaeOptions().depth(2).width(16).latent_channels(4).latent_resolution(latent_res))
      .pixelcnn(PixelCnnOptions().nr_resnet(1).nr_filters(16).nr_logistic_mix(3).dropout(0.0))
      .aux(AuxOptions().resolution(aux_res).color_bins(256));
}

// Smooth, structured images (gradients and stripes), so a tiny model can fit them.
inline torch::Tensor structured_images(int64_t n, int64_t channels, int64_t size) {
  auto ii = torch::arange(size, torch::kFloat).view({1, 1, size, 1});
  auto jj = torch::arange(size, torch::kFloat).view({1, 1, 1, size});
  std::vector<torch::Tensor> images;
  for (int64_t k = 0; k < n; ++k) {
    auto c = torch::arange(channels, torch::kFloat).view({1, channels, 1, 1});
    auto img = 127.5 + 100.0 * torch::sin(0.5 * (k + 1) * ii / size * 6.28 + c) *
                           torch::cos((k % 3 + 1) * jj / size * 3.14 + 0.3 * c);
    images.push_back(img);
  }
  return torch::round(torch::cat(images)).clamp(0, 255).to(torch::kByte);
}

}  // namespace agave::model::testing
