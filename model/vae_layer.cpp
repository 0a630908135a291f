#include "model/vae_layer.h"

#include "model/gaussian.h"
#include "model/vae_iaf.h"

namespace agave::model {
namespace {

WeightNormConv2d conv3x3(int64_t in, int64_t out, double init_scale = 1.0) {
  return WeightNormConv2d(WeightNormConv2dOptions(in, out, 3).pad(1).init_scale(init_scale));
}

}  // namespace

LadderLayerImpl::LadderLayerImpl(int64_t width, int64_t latent_channels, int64_t iaf_steps)
    : width_(width), latent_(latent_channels), iaf_steps_(iaf_steps) {
  TORCH_CHECK(iaf_steps >= 0, "VAE: iaf_steps must be >= 0, got ", iaf_steps);
  const int64_t ctx = iaf_steps_ > 0 ? width_ : 0;
  up_params_ = register_module("up_params", conv3x3(width_, 2 * latent_, 0.1));
  up_conv1_ = register_module("up_conv1", conv3x3(width_, ctx + width_));
  up_conv2_ = register_module("up_conv2", conv3x3(width_, width_));
  down_params_ = register_module("down_params", conv3x3(width_, 4 * latent_, 0.1));
  down_conv1_ = register_module("down_conv1", conv3x3(width_, ctx + width_));
  down_conv2_ = register_module("down_conv2", conv3x3(latent_ + width_, width_));
  iaf_ = register_module("iaf", torch::nn::ModuleList());
  for (int64_t s = 0; s < iaf_steps_; ++s) iaf_->push_back(IafStep(latent_, width_));
}

void LadderLayerImpl::opt_out_of_data_init() {
  down_params_->set_data_init(false);
  down_conv1_->set_data_init(false);
}

LadderUp LadderLayerImpl::up(const torch::Tensor& h) {
  auto act = torch::elu(h);
  auto params = up_params_(act).to(torch::kFloat).chunk(2, 1);
  const int64_t ctx = iaf_steps_ > 0 ? width_ : 0;
  auto split = up_conv1_(act).split_with_sizes({ctx, width_}, 1);
  LadderUp out;
  out.mean = params[0];
  out.logsd = params[1];
  if (ctx > 0) out.context = split[0];
  // Residual branches start at a tenth of the skip path so a deep stack stays well scaled.
  out.h = h + 0.1 * up_conv2_(torch::elu(split[1]));
  return out;
}

torch::Tensor LadderLayerImpl::flow(torch::Tensor z, const torch::Tensor& context,
                                    torch::Tensor* log_q) {
  for (int64_t s = 0; s < iaf_steps_; ++s) {
    // Reversing the channel order between steps lets every unit condition on every other.
    if (s > 0) {
      z = z.flip({1});
      if (log_q) *log_q = log_q->flip({1});
    }
    auto [shift, log_scale] = iaf_[s]->as<IafStep>()->forward(z, context);
    z = (z - shift) * torch::exp(-log_scale);
    if (log_q) *log_q = *log_q + log_scale;  // minus the log-determinant of z -> (z - m) / s
  }
  return z;
}

LadderDown LadderLayerImpl::down(const torch::Tensor& h, LatentSource source,
                                 const LadderUp* from_below, const torch::Tensor& given_z,
                                 PosteriorMean mean) {
  const int64_t ctx = iaf_steps_ > 0 ? width_ : 0;
  auto act = torch::elu(h);
  auto params = down_params_(act).to(torch::kFloat).chunk(4, 1);
  auto split = down_conv1_(act).split_with_sizes({ctx, width_}, 1);
  DiagonalGaussian prior(params[0], params[1]);
  torch::Tensor h_det = split[1];

  LadderDown out;
  if (source == LatentSource::kPosterior) {
    TORCH_CHECK(from_below != nullptr, "VAE: posterior sampling needs the bottom-up pass");
    // The posterior combines the bottom-up evidence with the top-down correction (rz).
    DiagonalGaussian posterior(from_below->mean + params[2], from_below->logsd + params[3]);
    auto z = posterior.sample();
    auto log_q = posterior.log_prob(z);
    const auto context = iaf_steps_ > 0 ? from_below->context + split[0] : torch::Tensor();
    out.z = flow(z, context, &log_q);
    out.log_q = log_q;
    if (mean == PosteriorMean::kKeep) out.mean = flow(posterior.mean, context, nullptr);
  } else if (source == LatentSource::kPrior) {
    out.z = prior.sample();
  } else {
    TORCH_CHECK(given_z.defined(), "VAE: LatentSource::kGiven needs a z for every layer");
    out.z = given_z.to(torch::kFloat);
  }
  out.log_p = prior.log_prob(out.z);

  auto inner = torch::elu(torch::cat({out.z.to(h_det.scalar_type()), h_det}, 1));
  out.h = h + 0.1 * down_conv2_(inner);
  return out;
}

}  // namespace agave::model
