#pragma once
// Picture grids of uint8 N×C×H×W tensors for PNG files: sample sheets like the paper's figures.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/agave.h"

#include "monitoring/png_image.h"

namespace agave::trainer {

// Lays out rows of images (each tensor N×C×H×W uint8, same C) one row per tensor, images
// resized by nearest neighbour to the tallest one's size times the smallest whole factor that
// makes them at least `min_size` pixels (28×28 images show at 84×84), separated by `pad`
// pixels.
monitoring::Image image_grid(const std::vector<torch::Tensor>& rows, int64_t pad = 2,
                             int64_t min_size = 64);

struct PictureOptions {
  int64_t images = 8;               // latents (rows) of the samples sheet; test images shown
  int64_t samples_per_latent = 10;  // PixelCNN samples drawn for each f(z) (the paper's Fig. 7)
};

// Sheets like the paper's, from `model` as it is (swap in the EMA weights first if wanted),
// written as <output_dir>/samples-step-<step>.png and reconstructions-step-<step>.png and
// copied to samples.png and reconstructions.png (the newest):
//   samples: one row per z ~ p(z): f(z), then `samples_per_latent` PixelCNN samples given it;
//   reconstructions: the first `images` test images x, f(z) of z ~ q(z|x), and a PixelCNN
//   sample given that f(z).
// One cached sampling pass draws every sample. The baselines: vae_only shows f(z) only (its
// decoder means), pixelcnn_only has no f(z) rows (unconditional samples). Returns the files of
// this step (samples-step-N.png, reconstructions-step-N.png).
std::vector<std::string> write_picture_sheets(model::Agave& model, const std::string& shards,
                                              const PictureOptions& options,
                                              const torch::Device& device,
                                              const std::string& output_dir, int64_t step);

}  // namespace agave::trainer
