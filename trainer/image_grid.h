#pragma once
// Picture grids of uint8 N×C×H×W tensors for PNG files: sample sheets like the paper's figures.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/agave.h"

#include "monitoring/png_image.h"

namespace agave::trainer {

// Lays out rows of images (each tensor N×C×H×W uint8, same C) one row per tensor, images
// resized to the height of the tallest by nearest neighbour, separated by `pad` pixels.
monitoring::Image image_grid(const std::vector<torch::Tensor>& rows, int64_t pad = 2);

// Sheets like the paper's, from `model` as it is (swap in the EMA weights first if wanted):
// <output_dir>/samples.png, f(z) of z ~ p(z) above the PixelCNN samples conditioned on it, and
// reconstructions.png, the first `n` test images x, f(z) of z ~ q(z|x), and a PixelCNN sample
// given that f(z). One cached sampling pass draws both sheets' samples.
void write_picture_sheets(model::Agave& model, const std::string& shards, int64_t n,
                          const torch::Device& device, const std::string& output_dir);

}  // namespace agave::trainer
