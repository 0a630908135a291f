#include "model/latent_probe.h"

#include "model/likelihood.h"

namespace agave::model {

torch::Tensor x_nll_given(AgaveImpl& model, const torch::Tensor& x, const torch::Tensor& fz) {
  TORCH_CHECK(model.has_latents(), "x_nll_given: ", model_kind_name(model.options().kind()),
              " has no latents");
  TORCH_CHECK(fz.dim() == 4 && fz.size(0) == x.size(0),
              "x_nll_given: expected one f(z) per image (", x.size(0), "), got ", fz.sizes());
  if (model.decoder_models_x()) return -model.decoder_log_prob(x, fz);
  return -discretized_mix_logistic_log_prob(AgaveImpl::scale_pixels(x), model.pixel_params(x, fz));
}

LatentProbe probe_latents(AgaveImpl& model, const torch::Tensor& x, const torch::Tensor& partner) {
  TORCH_CHECK(partner.dim() == 1 && partner.size(0) == x.size(0),
              "probe_latents: partner must hold one index per image (", x.size(0), "), got ",
              partner.sizes());
  auto [terms, v] = model.forward_with_latents(x);
  LatentProbe p;
  p.terms = std::move(terms);
  p.kl_layers = std::move(v.kl_layers);
  p.z_mean = std::move(v.z_mean);
  if (!model.has_latents()) {
    p.x_nll_other = p.terms.x_nll;
    return p;
  }
  p.fz = v.fz;
  p.x_nll_other =
      x_nll_given(model, x, v.fz.index_select(0, partner.to(torch::kLong).to(v.fz.device())));
  return p;
}

}  // namespace agave::model
