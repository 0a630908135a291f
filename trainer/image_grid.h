#pragma once
// Picture grids of uint8 N×C×H×W tensors for PNG files: sample sheets like the paper's figures.
#include <torch/torch.h>

#include <vector>

#include "monitoring/png_image.h"

namespace agave::trainer {

// Lays out rows of images (each tensor N×C×H×W uint8, same C) one row per tensor, images
// resized to the height of the tallest by nearest neighbour, separated by `pad` pixels.
monitoring::Image image_grid(const std::vector<torch::Tensor>& rows, int64_t pad = 2);

}  // namespace agave::trainer
