#pragma once
// How much the likelihood of x uses z, per image (issue 33): the model's −ln p(x|z) with z drawn
// from q(z|x) of the same image and with the f(z) of another image of the batch, each latent
// layer's KL, and the posterior means Burda et al.'s active-unit count needs. Reductions over
// images (means, standard errors, the count) are the evaluator's (trainer/evaluator.h).
#include <torch/torch.h>

#include <vector>

#include "model/agave.h"

namespace agave::model {

struct LatentProbe {
  LossTerms terms;            // forward(x) with every term, for the z drawn here
  torch::Tensor x_nll_other;  // N: −ln p(x_i | z_partner[i]), the same draws paired with
                              // other images; equal to terms.x_nll for pixelcnn_only (no z)
  std::vector<torch::Tensor> kl_layers;  // per layer, bottom first, N nats; they sum to terms.kl
  std::vector<torch::Tensor> z_mean;     // per layer, N×Z×R×R: E_q(z|x)[z] (VaeOutput::z_mean)
  torch::Tensor fz;  // the draws' f(z), N×C×r×r, to pair with images of other batches; undefined
                     // for pixelcnn_only
};

// −ln p(x|z) per image, nats, for given f(z) (one per image of x) under what models x: the
// PixelCNN, or the VAE decoder for vae_only. Models with latents only.
torch::Tensor x_nll_given(AgaveImpl& model, const torch::Tensor& x, const torch::Tensor& fz);

// `partner`: N image indices (int64) into x; the caller chooses them, normally a derangement so
// that no image keeps its own z. What models x scores the pairs: the PixelCNN, or the VAE decoder
// for vae_only. Costs forward(x) plus one pass of that likelihood (and, with IAF, one pass of the
// flow for the means). Call in eval mode without autograd for evaluation.
LatentProbe probe_latents(AgaveImpl& model, const torch::Tensor& x, const torch::Tensor& partner);

}  // namespace agave::model
