#include "model/agave.h"

#include <cmath>

#include "model/aux_target.h"
#include "model/likelihood.h"
#include "model/weight_norm.h"

namespace agave::model {

AgaveImpl::AgaveImpl(const AgaveOptions& options) : options_(options) {
  const int64_t c = options_.image_channels(), s = options_.image_size();
  const int64_t r = options_.aux().resolution(), bins = options_.aux().color_bins();
  TORCH_CHECK(c == 1 || c == 3, "Agave: image_channels must be 1 or 3, got ", c);
  TORCH_CHECK(s > 0 && s % 4 == 0, "Agave: image_size must be a multiple of 4, got ", s);
  TORCH_CHECK(r >= 1 && r <= s && s % r == 0, "Agave: aux.resolution ", r,
              " must divide image_size ", s);
  TORCH_CHECK(bins >= 2 && bins <= 256 && 256 % bins == 0, "Agave: aux.color_bins ", bins,
              " must divide 256");
  TORCH_CHECK(!decoder_models_x() || (r == s && bins == 256),
              "Agave: ", model_kind_name(options_.kind()),
              " models x with the VAE decoder, so aux must be x itself (resolution ", s,
              ", 256 color bins), got ", r, " and ", bins);
  vae = register_module("vae", Vae(options_.vae(), c, s, r));
  // f(z) has one channel per color, so the conditioning image has C channels too. The PixelCNN++
  // alone of Table 1 is Salimans et al.'s unconditional network: no conditioning stream at all
  // (a stream fed zeros would learn position-dependent biases at the borders and cost ≈ 14 % of
  // the convolution time).
  const int64_t cond = has_latents() ? c : 0;
  pixelcnn = register_module("pixelcnn", PixelCnn(options_.pixelcnn(), c, cond));
}

void AgaveImpl::check_input(const torch::Tensor& x) const {
  const int64_t c = options_.image_channels(), s = options_.image_size();
  TORCH_CHECK(x.dim() == 4 && x.size(1) == c && x.size(2) == s && x.size(3) == s,
              "Agave: expected x of shape N×", c, "×", s, "×", s, ", got ", x.sizes());
  TORCH_CHECK(x.scalar_type() != torch::kBool && !x.is_complex(),
              "Agave: x must hold real pixel values 0..255 (uint8 or float)");
}

torch::Tensor AgaveImpl::aux_target(const torch::Tensor& x) const {
  return model::aux_target(x, options_.aux().resolution());
}

torch::Tensor AgaveImpl::conditioning(const torch::Tensor& fz) const {
  const int64_t s = options_.image_size();
  if (fz.size(2) == s && fz.size(3) == s) return fz;
  namespace F = torch::nn::functional;
  return F::interpolate(
      fz, F::InterpolateFuncOptions().size(std::vector<int64_t>{s, s}).mode(torch::kNearest));
}

CondFeatures AgaveImpl::cond_features(const torch::Tensor& fz) {
  if (pixelcnn->cond_channels() == 0) return {};
  return pixelcnn->cond_features(conditioning(fz));
}

torch::Tensor AgaveImpl::pixel_params(const torch::Tensor& x, const torch::Tensor& fz) {
  return pixelcnn->forward_with_features(scale_pixels(x), cond_features(fz));
}

torch::Tensor AgaveImpl::decoder_log_prob(const torch::Tensor& x, const torch::Tensor& fz) const {
  return discretized_logistic_binned_log_prob(aux_target(x), VaeImpl::y_mean(fz),
                                              vae->y_log_scale(), options_.aux().color_bins());
}

torch::Tensor AgaveImpl::no_latent(const torch::Tensor& x) const {
  return torch::zeros(
      {x.size(0), options_.image_channels(), options_.image_size(), options_.image_size()},
      torch::TensorOptions().dtype(torch::kFloat).device(x.device()));
}

LossTerms AgaveImpl::forward(const torch::Tensor& x, const LossSelection& terms,
                             PixelCnnInput input) {
  check_input(x);
  const bool unconditioned = input == PixelCnnInput::kNone && has_aux_term();
  if (unconditioned && !terms.aux && !terms.kl) {
    // No term needs the VAE: it is not run (its draws of z would only cost time).
    LossTerms out;
    out.x_nll = terms.pixel ? -discretized_mix_logistic_log_prob(
                                  scale_pixels(x),
                                  pixelcnn->forward_with_features(scale_pixels(x), CondFeatures{}))
                            : torch::zeros({x.size(0)}, x.options().dtype(torch::kFloat));
    out.kl = out.kl_train = out.y_nll = torch::zeros_like(out.x_nll);
    return out;
  }
  if (!has_latents()) return terms_without_latents(x);
  return terms_given(x, terms, unconditioned, vae->forward(x));
}

std::pair<LossTerms, VaeOutput> AgaveImpl::forward_with_latents(const torch::Tensor& x) {
  check_input(x);
  if (!has_latents()) return {terms_without_latents(x), VaeOutput{}};
  auto v = vae->forward(x, PosteriorMean::kKeep);
  auto terms = terms_given(x, LossSelection{}, /*unconditioned=*/false, v);
  return {std::move(terms), std::move(v)};
}

LossTerms AgaveImpl::terms_without_latents(const torch::Tensor& x) {
  // The KL and the auxiliary term are 0, the PixelCNN is unconditional.
  LossTerms out;
  out.x_nll = -discretized_mix_logistic_log_prob(scale_pixels(x), pixel_params(x, {}));
  out.kl = out.kl_train = out.y_nll = torch::zeros_like(out.x_nll);
  return out;
}

LossTerms AgaveImpl::terms_given(const torch::Tensor& x, const LossSelection& terms,
                                 bool unconditioned, const VaeOutput& v) {
  LossTerms out;
  auto zeros = torch::zeros_like(v.kl);
  out.kl = v.kl;
  out.kl_train = v.kl_train;
  if (decoder_models_x()) {
    // The decoder is the likelihood of x (y = x): it is the x term, and there is no other.
    out.x_nll = (terms.pixel || terms.aux) ? -decoder_log_prob(x, v.fz) : zeros;
    out.y_nll = zeros;
    return out;
  }
  if (terms.pixel) {
    const auto params = unconditioned
                            ? pixelcnn->forward_with_features(scale_pixels(x), CondFeatures{})
                            : pixel_params(x, v.fz);
    out.x_nll = -discretized_mix_logistic_log_prob(scale_pixels(x), params);
  } else {
    out.x_nll = zeros;
  }
  out.y_nll = terms.aux ? -decoder_log_prob(x, v.fz) : zeros;
  return out;
}

torch::Tensor AgaveImpl::loss(const LossTerms& terms, double lambda, const LossSelection& enabled) {
  torch::Tensor total = torch::zeros_like(terms.kl_train);
  if (enabled.pixel) total = total + terms.x_nll;
  if (enabled.aux) total = total + terms.y_nll;
  if (enabled.kl) total = total + lambda * terms.kl_train;
  return total.mean();
}

int64_t AgaveImpl::dims_per_image() const {
  return options_.image_channels() * options_.image_size() * options_.image_size();
}

torch::Tensor AgaveImpl::bits_per_dim(const torch::Tensor& nats) const {
  return nats / (static_cast<double>(dims_per_image()) * std::log(2.0));
}

double AgaveImpl::bits_per_dim(double nats) const {
  return nats / (static_cast<double>(dims_per_image()) * std::log(2.0));
}

torch::Tensor AgaveImpl::importance_weighted_bound(const torch::Tensor& x, int64_t k,
                                                   int64_t chunk) {
  check_input(x);
  TORCH_CHECK(k >= 1, "importance_weighted_bound: K must be >= 1, got ", k);
  TORCH_CHECK(chunk >= 1, "importance_weighted_bound: chunk must be >= 1, got ", chunk);
  torch::NoGradGuard no_grad;
  ScopedEval eval(*this);
  const int64_t n = x.size(0), rows = n * k;
  // Row r holds image r / K: the K draws of one image are adjacent.
  auto index = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(x.device()))
                   .unsqueeze(1)
                   .expand({n, k})
                   .reshape({-1});
  std::vector<torch::Tensor> log_w;
  for (int64_t start = 0; start < rows; start += chunk) {
    auto xb = x.index_select(0, index.slice(0, start, std::min(rows, start + chunk)));
    if (!has_latents()) {
      // No latent: every draw is the exact log-likelihood.
      log_w.push_back(discretized_mix_logistic_log_prob(scale_pixels(xb), pixel_params(xb, {})));
      continue;
    }
    auto v = vae->forward(xb);
    auto log_px = decoder_models_x()
                      ? decoder_log_prob(xb, v.fz)
                      : discretized_mix_logistic_log_prob(scale_pixels(xb), pixel_params(xb, v.fz));
    log_w.push_back(log_px + v.log_p - v.log_q);
  }
  auto w = torch::cat(log_w).view({n, k}).to(torch::kDouble);
  return (torch::logsumexp(w, 1) - std::log(static_cast<double>(k))).to(torch::kFloat);
}

void AgaveImpl::data_init(const torch::Tensor& x) {
  check_input(x);
  data_dependent_init(*this, [&] { forward(x); });
}

ParameterGroups AgaveImpl::parameter_groups() const {
  ParameterGroups groups{vae->parameters(), pixelcnn->parameters(), {}};
  for (const auto& kv : pixelcnn->named_parameters()) {
    // Every module of the conditioning stream is named cond_* (model/pixelcnn.cpp, layers.cpp).
    if (kv.key().find("cond_") != std::string::npos) {
      groups.pixelcnn_conditioning.push_back(kv.value());
    }
  }
  return groups;
}

void AgaveImpl::set_free_bits(double nats) {
  vae->set_free_bits(nats);
  options_.vae().free_bits(nats);
}

}  // namespace agave::model
