#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/agave.h"
#include "model/sampler.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

TEST(AgaveOverfit, TinyModelLearnsAHandfulOfImages) {
  torch::manual_seed(0);
  Agave model(testing::tiny_options().vae(
      VaeOptions().depth(2).width(16).latent_channels(4).latent_resolution(4).free_bits(0.05)));
  auto x = testing::structured_images(4, 3, 8);
  model->data_init(x);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(5e-3));
  const int steps = 200;
  double first = 0, last = 0;  // last: mean of the final 10 steps (the ELBO is noisy)
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    auto t = model->forward(x);
    AgaveImpl::loss(t, 1.0).backward();
    opt.step();
    const double bpd = model->bits_per_dim((t.x_nll + t.kl).mean().item<double>());
    if (step == 0) first = bpd;
    if (step >= steps - 10) last += bpd / 10;
  }
  EXPECT_GT(first, 7.0);
  EXPECT_LT(last, 5.5) << "bits/dim went from " << first << " to " << last;
  auto t = model->forward(x);
  EXPECT_GT(t.kl.mean().item<double>(), -1e-3);
  model->eval();
  auto bound = model->importance_weighted_bound(x, 8, 32);
  EXPECT_LT(model->bits_per_dim(-bound.mean().item<double>()), 6.0);
  // Reconstructions go through q(z|x): their f(z) matches y better than a prior draw's.
  auto recon = reconstruct(model, x);
  EXPECT_EQ(recon.x.sizes(), x.sizes());
  auto y = model->aux_target(x);
  auto err = [&](const torch::Tensor& fz_pixels) {
    return (fz_pixels.to(torch::kFloat) - y).abs().mean().item<double>();
  };
  torch::NoGradGuard no_grad;
  auto prior_fz = VaeImpl::y_mean(model->vae->sample_prior(x.size(0)).fz);
  EXPECT_LT(err(recon.fz), err(prior_fz));
}

}  // namespace
}  // namespace agave::model
