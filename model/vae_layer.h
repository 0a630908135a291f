#pragma once
// One stochastic layer of the bidirectional (ladder) ResNet VAE of IAF-VAE (Kingma et al.
// 2016). The bottom-up pass gives the layer's share of the posterior parameters (and IAF
// context); the top-down pass gives the prior, corrects the posterior with what the layers
// above decided, draws z and folds it back into the top-down state.
#include <torch/torch.h>

#include "model/weight_norm.h"

namespace agave::model {

// Where z comes from in the top-down pass.
enum class LatentSource {
  kPosterior,  // z ~ q(z | x): training, evaluation, reconstruction
  kPrior,      // z ~ p(z): sampling
  kGiven,      // z supplied by the caller (fixed-z tests, replaying a draw)
};

struct LadderUp {
  torch::Tensor h;        // residual state passed to the layer above
  torch::Tensor mean;     // bottom-up posterior mean (fp32)
  torch::Tensor logsd;    // bottom-up posterior log std (fp32)
  torch::Tensor context;  // IAF context (undefined without IAF)
};

struct LadderDown {
  torch::Tensor h;      // residual state passed to the layer below
  torch::Tensor z;      // the latent after the flow: what the prior scores
  torch::Tensor log_q;  // N×Z×R×R elementwise ln q(z|x) (kPosterior only)
  torch::Tensor log_p;  // N×Z×R×R elementwise ln p(z)
  // E_q[z | x, z of the layers above] as the prior scores z (kPosterior with PosteriorMean::kKeep
  // only): the Gaussian mean, pushed through the IAF steps when there are any (the flow of the
  // mean: exact without IAF, a first-order estimate with it; the flow's own mean has no closed
  // form). Below the top layer it is conditional on the draw above, as the ladder's posterior is.
  torch::Tensor mean;
};

// Whether the top-down pass also computes E_q(z|x)[z] (evaluation's active-unit count; with IAF
// it costs one more pass of the flow, so training skips it).
enum class PosteriorMean { kSkip, kKeep };

class LadderLayerImpl : public torch::nn::Module {
 public:
  LadderLayerImpl(int64_t width, int64_t latent_channels, int64_t iaf_steps);

  LadderUp up(const torch::Tensor& h);
  // `from_below` is required for kPosterior; `given_z` for kGiven.
  LadderDown down(const torch::Tensor& h, LatentSource source, const LadderUp* from_below,
                  const torch::Tensor& given_z = {}, PosteriorMean mean = PosteriorMean::kSkip);

  // The top layer's top-down convs see only the learned constant h_top, whose batch variance
  // is zero: data-dependent init would divide by it. They keep their default init instead.
  void opt_out_of_data_init();

 private:
  // z through the layer's IAF steps given their context; adds each step's log-scale to *log_q
  // when given.
  torch::Tensor flow(torch::Tensor z, const torch::Tensor& context, torch::Tensor* log_q);

  int64_t width_, latent_, iaf_steps_;
  // The Gaussian parameters get their own convs so data-dependent init can start them small
  // (std 0.1): q ≈ p ≈ N(0, 1) at the start, instead of log-stds with unit spread whose KL
  // can reach 1e5 nats.
  WeightNormConv2d up_params_{nullptr}, up_conv1_{nullptr}, up_conv2_{nullptr};
  WeightNormConv2d down_params_{nullptr}, down_conv1_{nullptr}, down_conv2_{nullptr};
  torch::nn::ModuleList iaf_{nullptr};
};
TORCH_MODULE(LadderLayer);

}  // namespace agave::model
