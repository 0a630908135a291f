#pragma once
// Bidirectional (ladder) ResNet VAE after IAF-VAE (Kingma et al. 2016), the encoder/decoder
// of AGAVE. Its decoder output f(z) is both the mean of the auxiliary image y and the image
// that conditions the PixelCNN.
//
//   x ∈ [0,255] → x/256 − 0.5 → stem (5×5 convs, stride 2 until latent_resolution)
//     → bottom-up: depth ladder layers (posterior evidence, IAF context)
//   learned top vector h_top tiled to latent_resolution
//     → top-down: the same layers in reverse (prior, posterior correction, z, IAF)
//     → ELU → 5×5 (transposed) convs to aux resolution → f(z): C channels.
//
// Scale of f(z): [−1, 1] units, the PixelCNN's input scale; the logistic mean of y in pixel
// units is μ = 127.5·(f(z) + 1) (see VaeImpl::y_mean).
#include <torch/torch.h>

#include <functional>

#include <cstdint>
#include <vector>

#include "model/options.h"
#include "model/vae_layer.h"

namespace agave::model {

struct VaeOutput {
  torch::Tensor fz;              // N×C×r×r, r = aux resolution, [−1, 1] units
  torch::Tensor log_q;           // N: ln q(z|x) of the drawn z, all layers (posterior only)
  torch::Tensor log_p;           // N: ln p(z) of the drawn z, all layers
  torch::Tensor kl;              // N: log_q − log_p, the single-sample KL estimate (nats)
  torch::Tensor kl_train;        // N: kl with free bits applied (what training minimises)
  std::vector<torch::Tensor> z;  // per layer (bottom first), after the flow; N×Z×R×R
  // Each layer's share of kl, N, bottom first (they sum to kl up to rounding): like z_mean, an
  // evaluation's output, with PosteriorMean::kKeep only (the training step never reads it).
  std::vector<torch::Tensor> kl_layers;
  // E_q(z|x)[z] per layer, N×Z×R×R, bottom first: with PosteriorMean::kKeep only (LadderDown).
  std::vector<torch::Tensor> z_mean;
};

class VaeImpl : public torch::nn::Module {
 public:
  VaeImpl(const VaeOptions& options, int64_t image_channels, int64_t image_size,
          int64_t aux_resolution);

  // z ~ q(z|x). x: N×C×H×W, uint8 or float holding pixel values in [0, 255]. All outputs fp32.
  VaeOutput forward(const torch::Tensor& x, PosteriorMean mean = PosteriorMean::kSkip);
  // z ~ p(z) by ancestral sampling (log_q, kl, kl_train undefined).
  VaeOutput sample_prior(int64_t n);
  // f(z) for a given z (one tensor per layer, as in VaeOutput::z); log_p is filled.
  VaeOutput decode(const std::vector<torch::Tensor>& z);

  // Logistic mean of y in pixel units [0, 255] for a given f(z).
  static torch::Tensor y_mean(const torch::Tensor& fz) { return 127.5 * (fz + 1.0); }
  // One learned log-scale per color channel (pixel units): C.
  const torch::Tensor& y_log_scale() const { return log_scale_; }

  const VaeOptions& options() const { return options_; }
  // Training phases may change the free bits (Eq. 6 has none); nothing else changes after
  // construction.
  void set_free_bits(double nats);

  // Sums a tensor over every replica's batch (data-parallel training: an all-reduce). Free bits
  // decide on the batch-average KL per channel; averaging over the global batch instead of one
  // rank's share keeps a step independent of how its batch is split. Unset: this batch alone.
  using BatchSum = std::function<torch::Tensor(torch::Tensor)>;
  void set_batch_sum(BatchSum f) { batch_sum_ = std::move(f); }

 private:
  VaeOutput top_down(int64_t n, LatentSource source, const std::vector<LadderUp>* ups,
                     const std::vector<torch::Tensor>* given,
                     PosteriorMean mean = PosteriorMean::kSkip);

  VaeOptions options_;
  int64_t image_channels_, image_size_, aux_resolution_;
  torch::nn::Sequential stem_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::Sequential decoder_{nullptr};
  torch::Tensor h_top_, log_scale_;
  BatchSum batch_sum_;
};
TORCH_MODULE(Vae);

// log2 of a ratio of sizes that must be a power of two (either direction); throws otherwise.
int64_t log2_ratio(int64_t from, int64_t to, const char* what);

}  // namespace agave::model
