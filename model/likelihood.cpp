#include "model/likelihood.h"

#include <ATen/record_function.h>
#include <c10/core/DispatchKeySet.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>

namespace agave::model {

namespace {

constexpr double kMinLogScale = -7.0;
constexpr double kBinHalfWidth = 1.0 / 255.0;
// Below this floor log(1 − e^{−d}) would become log 0 once d underflows (scale ≫ bin width).
constexpr double kMinBinWidthInScales = 1e-20;

// Log-likelihood math must stay fp32 even inside an autocast region: a bf16 sigmoid difference
// loses the small bin masses entirely.
struct Fp32Region {
  c10::impl::ExcludeDispatchKeyGuard no_autocast{c10::autocast_dispatch_keyset};
};

// log(σ(u) − σ(l)) for u > l, with d = u − l > 0 given separately so it stays exact when u and l
// are huge: σ(u) − σ(l) = σ(u) · σ(−l) · (1 − e^{−d}). Finite (and with finite gradients) for
// all finite inputs, unlike log of a difference of sigmoids, which cancels to 0.
torch::Tensor log_sigmoid_diff(const torch::Tensor& u, const torch::Tensor& l,
                               const torch::Tensor& d) {
  return -torch::softplus(-u) - torch::softplus(l) +
         torch::log(-torch::expm1(-d.clamp_min(kMinBinWidthInScales)));
}

struct MixtureParams {
  int64_t channels, nr_mix;
  torch::Tensor logits;      // N×M×H×W
  torch::Tensor means;       // N×C×M×H×W (uncoupled)
  torch::Tensor log_scales;  // N×C×M×H×W, clamped
  torch::Tensor coeffs;      // N×3×M×H×W (C = 3) or undefined
};

MixtureParams unpack(const torch::Tensor& params, int64_t channels, int64_t nr_mix) {
  TORCH_CHECK(params.dim() == 4, "mixture params must be N×K×H×W");
  MixtureParams p{channels, nr_mix, {}, {}, {}, {}};
  const int64_t n = params.size(0), h = params.size(2), w = params.size(3);
  const int64_t per_channel = channels == 3 ? 3 * nr_mix : 2 * nr_mix;
  p.logits = params.slice(1, 0, nr_mix);
  auto rest = params.slice(1, nr_mix).reshape({n, channels, per_channel, h, w});
  // Contiguous copies: several pointwise kernels (tanh above all, ~40× here) fall off their
  // vectorised path on these strided 5-d views.
  p.means = rest.slice(2, 0, nr_mix).contiguous();
  p.log_scales = rest.slice(2, nr_mix, 2 * nr_mix).clamp_min(kMinLogScale).contiguous();
  if (channels == 3) p.coeffs = torch::tanh(rest.slice(2, 2 * nr_mix, 3 * nr_mix).contiguous());
  return p;
}

int64_t infer_nr_mix(int64_t param_channels, int64_t channels) {
  TORCH_CHECK(channels == 1 || channels == 3, "discretized logistic mixture: C must be 1 or 3");
  const int64_t per = channels == 3 ? 10 : 3;
  TORCH_CHECK(param_channels % per == 0, "discretized logistic mixture: ", param_channels,
              " parameter channels do not fit C = ", channels);
  return param_channels / per;
}

torch::Tensor to_bin_center(const torch::Tensor& v) {
  return torch::round((v + 1.0) * 127.5) / 127.5 - 1.0;
}

}  // namespace

torch::Tensor discretized_mix_logistic_log_prob_per_pixel(const torch::Tensor& x_in,
                                                          const torch::Tensor& params_in) {
  Fp32Region fp32;
  TORCH_CHECK(x_in.dim() == 4 && params_in.dim() == 4, "x and params must be 4-d");
  const auto x = x_in.to(torch::kFloat);
  const auto params = params_in.to(torch::kFloat);
  const int64_t c = x.size(1);
  TORCH_CHECK(
      params.size(0) == x.size(0) && params.size(2) == x.size(2) && params.size(3) == x.size(3),
      "x and params disagree in N, H or W");
  const int64_t m = infer_nr_mix(params.size(1), c);
  auto p = unpack(params, c, m);

  auto xe = x.unsqueeze(2);  // N×C×1×H×W, broadcast over components
  torch::Tensor means = p.means;
  if (c == 3) {
    // Autoregressive colors: G and B means shift with the true values of the earlier colors.
    auto x0 = xe.select(1, 0), x1 = xe.select(1, 1);
    auto m1 = p.means.select(1, 1) + p.coeffs.select(1, 0) * x0;
    auto m2 = p.means.select(1, 2) + p.coeffs.select(1, 1) * x0 + p.coeffs.select(1, 2) * x1;
    means = torch::stack({p.means.select(1, 0), m1, m2}, 1);
  }
  auto centered = xe - means;
  auto inv_s = torch::exp(-p.log_scales);
  auto plus_in = inv_s * (centered + kBinHalfWidth);
  auto min_in = inv_s * (centered - kBinHalfWidth);
  auto log_cdf_plus = -torch::softplus(-plus_in);         // x = 0: all mass below the bin top
  auto log_one_minus_cdf_min = -torch::softplus(min_in);  // x = 255: all mass above the bottom
  auto log_mass = log_sigmoid_diff(plus_in, min_in, inv_s * (2 * kBinHalfWidth));
  auto mid_in = inv_s * centered;
  auto log_pdf_mid = mid_in - p.log_scales - 2.0 * torch::softplus(mid_in);

  // Interior bins: the mass, floored at 1e-12 as in PixelCNN++; a mass so small that float
  // cannot resolve it (< 1e-5) falls back to density × bin width (2/255 = 1/127.5).
  auto interior = torch::where(log_mass > std::log(1e-5), log_mass.clamp_min(std::log(1e-12)),
                               log_pdf_mid - std::log(127.5));
  auto log_probs =
      torch::where(xe < -0.999, log_cdf_plus,
                   torch::where(xe > 0.999, log_one_minus_cdf_min, interior));  // N×C×M×H×W
  auto joint = log_probs.sum(1) + torch::log_softmax(p.logits, 1);              // N×M×H×W
  return torch::logsumexp(joint, 1);                                            // N×H×W
}

torch::Tensor discretized_mix_logistic_log_prob(const torch::Tensor& x,
                                                const torch::Tensor& params) {
  RECORD_USER_SCOPE("agave::likelihood");  // profiles group the forward ops by this name
  return discretized_mix_logistic_log_prob_per_pixel(x, params).sum({1, 2});
}

torch::Tensor sample_from_discretized_mix_logistic(const torch::Tensor& params_in, int64_t nr_mix,
                                                   bool quantize) {
  Fp32Region fp32;
  torch::NoGradGuard no_grad;
  TORCH_CHECK(params_in.dim() == 4 && nr_mix > 0, "params must be N×K×H×W, nr_mix > 0");
  const auto params = params_in.to(torch::kFloat);
  const int64_t k = params.size(1);
  TORCH_CHECK(k == 10 * nr_mix || k == 3 * nr_mix, "sample: ", k,
              " parameter channels fit neither C = 3 (10·M) nor C = 1 (3·M) for M = ", nr_mix);
  const int64_t c = k == 10 * nr_mix ? 3 : 1;
  auto p = unpack(params, c, nr_mix);

  // Gumbel-max picks one component per pixel, shared by its colors. The uniforms stay inside
  // [1e-5, 1 − 1e-5] so neither log can hit 0.
  auto uniform = [](torch::IntArrayRef shape, const torch::TensorOptions& o) {
    return torch::rand(shape, o) * (1.0 - 2e-5) + 1e-5;
  };
  auto u = uniform(p.logits.sizes(), p.logits.options());
  auto pick = (p.logits - torch::log(-torch::log(u))).argmax(1, /*keepdim=*/true);  // N×1×H×W
  auto one_hot = torch::zeros_like(p.logits).scatter_(1, pick, 1.0).unsqueeze(1);   // N×1×M×H×W
  auto select = [&](const torch::Tensor& t) { return (t * one_hot).sum(2); };       // N×C×H×W
  auto means = select(p.means);
  auto log_scales = select(p.log_scales);

  auto r = uniform(means.sizes(), means.options());
  auto draw = means + torch::exp(log_scales) * (torch::log(r) - torch::log1p(-r));
  auto finish = [&](const torch::Tensor& v) {
    auto clipped = v.clamp(-1.0, 1.0);
    return quantize ? to_bin_center(clipped) : clipped;
  };
  if (c == 1) return finish(draw);
  auto coeffs = select(p.coeffs);
  auto x0 = finish(draw.select(1, 0));
  auto x1 = finish(draw.select(1, 1) + coeffs.select(1, 0) * x0);
  auto x2 = finish(draw.select(1, 2) + coeffs.select(1, 1) * x0 + coeffs.select(1, 2) * x1);
  return torch::stack({x0, x1, x2}, 1);
}

torch::Tensor discretized_logistic_binned_log_prob_per_element(const torch::Tensor& y_in,
                                                               const torch::Tensor& mean_in,
                                                               const torch::Tensor& log_scale_in,
                                                               int64_t bins) {
  Fp32Region fp32;
  TORCH_CHECK(bins >= 1 && 256 % bins == 0, "color bins must divide 256, got ", bins);
  TORCH_CHECK(y_in.dim() == 4, "y must be N×C×h×w");
  const auto y = y_in.to(torch::kFloat);
  const auto mean = mean_in.to(torch::kFloat);
  auto log_scale = log_scale_in.to(torch::kFloat);
  if (log_scale.dim() == 1) {
    TORCH_CHECK(log_scale.size(0) == y.size(1) || log_scale.size(0) == 1,
                "log_scale must have one entry per color channel");
    log_scale = log_scale.view({1, -1, 1, 1});
  }
  log_scale = log_scale.clamp_min(kMinLogScale);
  const double width = 256.0 / static_cast<double>(bins);

  auto lower = torch::floor(y / width) * width;
  auto upper = lower + width;
  auto inv_s = torch::exp(-log_scale);
  auto u = (upper - mean) * inv_s;
  auto l = (lower - mean) * inv_s;
  // Open the outermost edges so the b masses sum to one. Each factor of
  // σ(u) − σ(l) = σ(u)·σ(−l)·(1 − e^{−(u−l)}) that belongs to an infinite edge is exactly 1.
  auto lowest = lower < 0.5;
  auto highest = upper > 255.5;
  auto zero = torch::zeros({}, y.options());
  auto log_sig_u = torch::where(highest, zero, -torch::softplus(-u));
  auto log_sig_neg_l = torch::where(lowest, zero, -torch::softplus(l));
  auto d = (inv_s * width).expand_as(u).clamp_min(kMinBinWidthInScales);
  auto log_gap = torch::where(lowest.logical_or(highest), zero, torch::log(-torch::expm1(-d)));
  return log_sig_u + log_sig_neg_l + log_gap;
}

torch::Tensor discretized_logistic_binned_log_prob(const torch::Tensor& y,
                                                   const torch::Tensor& mean,
                                                   const torch::Tensor& log_scale, int64_t bins) {
  RECORD_USER_SCOPE("agave::likelihood");
  return discretized_logistic_binned_log_prob_per_element(y, mean, log_scale, bins).sum({1, 2, 3});
}

}  // namespace agave::model
