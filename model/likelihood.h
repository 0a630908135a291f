#pragma once
// Likelihoods of AGAVE, always computed in fp32 (inputs are cast to float and autocast is
// off inside), results in NATS.
//
// 1. Discretized logistic mixture for x (PixelCNN++), x in [−1, 1] units:
//    pixel value k ∈ {0..255} ↔ x = k / 127.5 − 1, bin half-width 1/255.
//    Parameter layout along dim 1 (see model/pixelcnn.h):
//      C = 3: [M logits | for c in R,G,B: M means, M log-scales, M coefficients] = 10·M
//      C = 1: [M logits | M means | M log-scales]                                 =  3·M
//    Means couple across colors: μ_G += α·x_R, μ_B += β·x_R + γ·x_G (α, β, γ = tanh(coeffs)).
// 2. Discretized logistic with b color bins for the auxiliary image y (AGAVE Eq. 8), y and the
//    mean in pixel units [0, 255].
#include <torch/torch.h>

#include <cstdint>

namespace agave::model {

// ---- discretized logistic mixture ------------------------------------------------------------

// Per-pixel log-probability in nats, summed over the C channels: N×H×W.
// x: N×C×H×W float in [−1, 1] holding exact bin centers (k/127.5 − 1); C ∈ {1, 3}.
// params: N×(10M or 3M)×H×W. M is inferred from params and C.
torch::Tensor discretized_mix_logistic_log_prob_per_pixel(const torch::Tensor& x,
                                                          const torch::Tensor& params);

// Per-image log-probability in nats: N (sum of the per-pixel values).
torch::Tensor discretized_mix_logistic_log_prob(const torch::Tensor& x,
                                                const torch::Tensor& params);

// Draws x ~ p(x | params) for every pixel independently given the params (the caller keeps only
// the pixel it is generating). One component per pixel by Gumbel-max, logistic draws via
// torch::rand (the global generator; seed with torch::manual_seed), colors in order R, G, B with
// the means coupled to the already sampled colors, each clipped to [−1, 1].
// quantize = true snaps every color to its bin center (k/127.5 − 1) before it feeds the next
// color's mean, which is exactly the discretized distribution the loss scores.
// Returns N×C×H×W float in [−1, 1]; C = 3 if params has 10·nr_mix channels, 1 if 3·nr_mix.
torch::Tensor sample_from_discretized_mix_logistic(const torch::Tensor& params, int64_t nr_mix,
                                                   bool quantize = true);

// ---- discretized logistic with b color bins (paper Eq. 8) ------------------------------------

// Per-image log p(y) in nats: N.
// y: N×C×h×w float, integer pixel values in [0, 255].
// mean: N×C×h×w, logistic location in pixel units [0, 255] (f(z)).
// log_scale: C (one per color channel), natural log of the logistic scale in pixel units;
//   clamped at ≥ −7. Any shape broadcastable to N×C×h×w also works.
// bins: b, a divisor of 256. With c = 256/b, y's bin is [c·⌊y/c⌋, c·⌊y/c⌋ + c); the lowest bin's
// lower edge is −∞ and the highest bin's upper edge +∞, so the b bin masses sum to exactly 1.
// Computed as log σ(u) + log σ(−l) + log(1 − e^{−(u−l)}), finite for any finite inputs.
torch::Tensor discretized_logistic_binned_log_prob(const torch::Tensor& y,
                                                   const torch::Tensor& mean,
                                                   const torch::Tensor& log_scale, int64_t bins);

// Same, per element: N×C×h×w (nats).
torch::Tensor discretized_logistic_binned_log_prob_per_element(const torch::Tensor& y,
                                                               const torch::Tensor& mean,
                                                               const torch::Tensor& log_scale,
                                                               int64_t bins);

}  // namespace agave::model
