#pragma once
// AGAVE (Lucas & Verbeek 2018): a ladder VAE whose decoder output f(z) is the mean of an
// auxiliary image y and conditions a full-capacity PixelCNN++ on x. Everything per image is
// in nats; bits/dim always divide by x's dimension count C·H·W (also for the y term).
//
//   loss = −ln p(x|z) − ln p(y|z) + λ·KL      (paper Eq. 7; free bits only in the training KL)
//   ln p(x) ≥ logsumexp_k [ln p(x|z_k) + ln p(z_k) − ln q(z_k|x)] − ln K
#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "model/options.h"
#include "model/pixelcnn.h"
#include "model/vae.h"

namespace agave::model {

// Per-image loss terms in nats (N, fp32). A term that was not computed, or that the model's
// kind does not have, holds zeros.
struct LossTerms {
  torch::Tensor x_nll;     // −ln p(x|z) under what models x: the PixelCNN, or the VAE decoder
                           // where that models x itself (decoder_models_x)
  torch::Tensor y_nll;     // −ln p(y|z), the auxiliary term (has_aux_term)
  torch::Tensor kl;        // ln q(z|x) − ln p(z) of the drawn z: the reported KL
  torch::Tensor kl_train;  // kl with free bits: what training minimises
};

struct ParameterGroups {
  std::vector<torch::Tensor> vae;
  std::vector<torch::Tensor> pixelcnn;
  // The part of `pixelcnn` that only f(z) reaches (the conditioning stream and each gated
  // resnet's projection of it, named cond*): no gradient when the PixelCNN runs unconditioned.
  std::vector<torch::Tensor> pixelcnn_conditioning;
};

// What the PixelCNN sees of the VAE: f(z), or nothing (the conditioning stream's contribution
// is zero and the VAE is not run for the pixel term): paper §4's PixelCNN pretrained
// independently of the VAE, in parallel with it (trainer/parallel_pretraining.h).
enum class PixelCnnInput { kFz, kNone };

class AgaveImpl : public torch::nn::Module {
 public:
  explicit AgaveImpl(const AgaveOptions& options);

  // x: N×C×H×W, uint8 or float holding pixel values 0..255. y is derived inside (average
  // pooling to aux.resolution, rounded). z ~ q(z|x), one draw per image. terms.pixel selects
  // x_nll and terms.aux y_nll; where the decoder models x, either selects its x_nll.
  // input kNone: x_nll of the unconditioned PixelCNN; the VAE runs only for y_nll or KL.
  LossTerms forward(const torch::Tensor& x, const LossSelection& terms = {},
                    PixelCnnInput input = PixelCnnInput::kFz);

  // forward(x) of every term, also returning the VAE's draw of z with each layer's KL and the
  // posterior means (VaeOutput; empty for pixelcnn_only): what evaluation measures of z
  // (model/latent_probe.h). With IAF the means cost one more pass of the flow.
  std::pair<LossTerms, VaeOutput> forward_with_latents(const torch::Tensor& x);

  // Mean over the batch of x_nll + y_nll + λ·kl_train, restricted to `enabled` (nats).
  static torch::Tensor loss(const LossTerms& terms, double lambda,
                            const LossSelection& enabled = {});

  // nats / (C·H·W·ln 2) with x's C, H, W.
  int64_t dims_per_image() const;
  torch::Tensor bits_per_dim(const torch::Tensor& nats) const;
  double bits_per_dim(double nats) const;

  // Per-image lower bound on ln p(x) in nats (x only: no y term, KL unscaled) with K
  // importance samples. The N·K rows (each image repeated K times) are run `chunk` rows at a
  // time. Runs without autograd and in eval mode (restored afterwards). K = 1 is the
  // single-sample ELBO −(x_nll + kl) of forward() under the same seed.
  torch::Tensor importance_weighted_bound(const torch::Tensor& x, int64_t k, int64_t chunk = 256);

  // Data-dependent init of every weight-normalised layer (VAE and PixelCNN) on one batch.
  void data_init(const torch::Tensor& x);

  // The two parameter sets training phases freeze or train separately.
  ParameterGroups parameter_groups() const;

  // Pieces of forward(), public so the sampler and tests can use them.
  // y: model::aux_target(x, aux.resolution) (model/aux_target.h), float pixel values.
  torch::Tensor aux_target(const torch::Tensor& x) const;
  // f(z) (aux resolution, [−1, 1] units) upsampled to x's size by nearest neighbour.
  torch::Tensor conditioning(const torch::Tensor& fz) const;
  // ln p(y|z) of the VAE decoder, per image, for y = aux_target(x).
  torch::Tensor decoder_log_prob(const torch::Tensor& x, const torch::Tensor& fz) const;
  // A placeholder f(z) for pixelcnn_only models (zeros at x's size): it carries the batch size
  // and device; their PixelCNN is unconditional and never reads it.
  torch::Tensor no_latent(const torch::Tensor& x) const;
  // The PixelCNN's conditioning feature maps of f(z); empty for pixelcnn_only, whose PixelCNN
  // is unconditional (fz is then not read: undefined, or a placeholder such as no_latent(x)).
  CondFeatures cond_features(const torch::Tensor& fz);
  // PixelCNN mixture parameters for x given f(z); x as in forward(). fz may be undefined when
  // the PixelCNN is unconditional (pixelcnn_only).
  torch::Tensor pixel_params(const torch::Tensor& x, const torch::Tensor& fz);
  // Pixel values 0..255 → the PixelCNN's [−1, 1] bin centres.
  static torch::Tensor scale_pixels(const torch::Tensor& x) {
    return x.to(torch::kFloat) / 127.5 - 1.0;
  }

  // The VAE decoder's −ln p(y|z) of `terms`: y_nll, or x_nll where the decoder models x. Zeros
  // without latents. Plus KL it is the VAE's own bound.
  const torch::Tensor& decoder_nll(const LossTerms& terms) const {
    return decoder_models_x() ? terms.x_nll : terms.y_nll;
  }

  // What the model's kind has (model/options.h).
  bool has_latents() const { return model::has_latents(options_.kind()); }
  bool has_pixelcnn() const { return model::has_pixelcnn(options_.kind()); }
  bool decoder_models_x() const { return model::decoder_models_x(options_.kind()); }
  bool has_aux_term() const { return model::has_aux_term(options_.kind()); }

  const AgaveOptions& options() const { return options_; }
  // The VAE's free bits from now on (a training phase's setting); options() follows.
  void set_free_bits(double nats);

  Vae vae{nullptr};
  PixelCnn pixelcnn{nullptr};

 private:
  void check_input(const torch::Tensor& x) const;
  // forward()'s terms for pixelcnn_only, and for a model with latents given the VAE's draw v.
  LossTerms terms_without_latents(const torch::Tensor& x);
  LossTerms terms_given(const torch::Tensor& x, const LossSelection& terms, bool unconditioned,
                        const VaeOutput& v);
  AgaveOptions options_;
};
TORCH_MODULE(Agave);

// Puts a module in eval mode for a scope and restores its previous mode.
class ScopedEval {
 public:
  explicit ScopedEval(torch::nn::Module& module)
      : module_(module), was_training_(module.is_training()) {
    module_.eval();
  }
  ~ScopedEval() { module_.train(was_training_); }
  ScopedEval(const ScopedEval&) = delete;
  ScopedEval& operator=(const ScopedEval&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

}  // namespace agave::model
