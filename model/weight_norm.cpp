#include "model/weight_norm.h"

#include "model/autocast.h"
#include "model/weight_norm_kernel.h"

namespace agave::model {

WeightNormConv2dImpl::WeightNormConv2dImpl(const WeightNormConv2dOptions& options_)
    : options(options_) {
  reset();
}

void WeightNormConv2dImpl::reset() {
  const auto k = *options.kernel_size();
  const int64_t in = options.in_channels(), out = options.out_channels();
  TORCH_CHECK(in > 0 && out > 0, "WeightNormConv2d: channels must be positive");
  // PixelCNN++ draws V ~ N(0, 0.05); the scale is irrelevant after normalisation but keeps the
  // init pass's intermediate values in a familiar range.
  auto shape = options.transposed() ? std::vector<int64_t>{in, out, k[0], k[1]}
                                    : std::vector<int64_t>{out, in, k[0], k[1]};
  v = register_parameter("v", torch::randn(shape) * 0.05);
  g = register_parameter("g", torch::ones({out}));
  b = register_parameter("b", torch::zeros({out}));
}

torch::Tensor WeightNormConv2dImpl::weight() const {
  // Per output channel: dim 0 for a conv kernel (out×in×kh×kw), dim 1 for a transposed one.
  const std::vector<int64_t> reduce =
      options.transposed() ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{1, 2, 3};
  auto norm = v.pow(2).sum(reduce, /*keepdim=*/true).sqrt();
  auto gain = options.transposed() ? g.view({1, -1, 1, 1}) : g.view({-1, 1, 1, 1});
  return v * (gain / norm);
}

namespace {

// conv_transpose2d(x, w, bias, stride s) computed as one ordinary conv and a pixel shuffle:
// kernel row a = s·q + ρ sends input row i to output row s·(i + q) + ρ, so output phase ρ is a
// correlation of x with the taps {w[s·q + ρ]}, flipped over q. LibTorch 1.13 runs transposed
// convs on a slow im2col path (no oneDNN, no AMX for bf16); this form gets the fast conv.
torch::Tensor transposed_conv_by_phases(const torch::Tensor& x, const torch::Tensor& w,
                                        const torch::Tensor& bias, int64_t s) {
  const int64_t in = w.size(0), out = w.size(1), kh = w.size(2), kw = w.size(3);
  const int64_t qh = (kh + s - 1) / s, qw = (kw + s - 1) / s;
  auto k = torch::constant_pad_nd(w, {0, qw * s - kw, 0, qh * s - kh})
               .view({in, out, qh, s, qw, s})
               .permute({1, 3, 5, 0, 2, 4})  // out, ρh, ρw, in, q_h, q_w
               .flip({4, 5})
               .reshape({out * s * s, in, qh, qw});
  if (x.suggest_memory_format() == at::MemoryFormat::ChannelsLast) {
    k = k.contiguous(at::MemoryFormat::ChannelsLast);
  }
  // Each bias repeated s² times, without repeat_interleave (its output size costs a host sync).
  auto b = bias.defined() ? bias.unsqueeze(1).expand({out, s * s}).reshape({-1}) : bias;
  auto phases = torch::conv2d(x, k, b, 1, {qh - 1, qw - 1});
  // Trim the shuffled result to conv_transpose2d's size, (H − 1)·s + kh by (W − 1)·s + kw.
  return torch::pixel_shuffle(phases, s)
      .slice(2, 0, (x.size(2) - 1) * s + kh)
      .slice(3, 0, (x.size(3) - 1) * s + kw);
}

}  // namespace

torch::Tensor WeightNormConv2dImpl::apply(const torch::Tensor& x, const torch::Tensor& w,
                                          const torch::Tensor& bias) {
  const auto s = *options.stride();
  if (!options.transposed()) {
    const auto p = *options.pad();
    auto xp =
        (p[0] || p[1] || p[2] || p[3]) ? torch::constant_pad_nd(x, {p[0], p[1], p[2], p[3]}) : x;
    return torch::conv2d(xp, w, bias, {s[0], s[1]});
  }
  auto y = s[0] == s[1] ? transposed_conv_by_phases(x, w, bias, s[0])
                        : torch::conv_transpose2d(x, w, bias, {s[0], s[1]});
  const auto c = *options.crop();
  if (c[0] || c[1] || c[2] || c[3]) {
    y = y.slice(3, c[0], y.size(3) - c[1]).slice(2, c[2], y.size(2) - c[3]);
  }
  return y;
}

torch::Tensor WeightNormConv2dImpl::kernel_for(const torch::Tensor& x) const {
  // Transposed kernels normalise over dim 1, whose values are not one block: tensor ops.
  if (options.transposed() || !fused_weight_norm_applies(v)) return weight();
  return fused_weight_norm(v, g, convolution_dtype(x.device()));
}

torch::Tensor WeightNormConv2dImpl::forward(const torch::Tensor& x) {
  if (!data_init_pending_) return apply(x, kernel_for(x), b);
  data_init_pending_ = false;
  torch::NoGradGuard no_grad;
  // Moments of the pre-activation with g = 1, b = 0, taken on exactly what this layer outputs
  // (after padding and cropping), in fp32 even if the caller runs under autocast.
  auto gain_shape =
      options.transposed() ? std::vector<int64_t>{1, -1, 1, 1} : std::vector<int64_t>{-1, 1, 1, 1};
  const std::vector<int64_t> reduce =
      options.transposed() ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{1, 2, 3};
  auto direction = v / v.pow(2).sum(reduce, true).sqrt();
  auto t = apply(x, direction, {}).to(torch::kFloat);
  auto mean = t.mean({0, 2, 3});
  auto var = t.var({0, 2, 3}, /*unbiased=*/false);
  // A channel with (near) zero variance on the init batch, e.g. a conv of a constant
  // conditioning image, would get a gain of ~1e5 and blow up on the first real batch: it keeps
  // gain init_scale instead (only its mean is removed).
  auto scale = torch::where(var > 1e-8, options.init_scale() / (var + 1e-10).sqrt(),
                            torch::full_like(var, options.init_scale()));
  g.copy_(scale);
  b.copy_(-mean * scale);
  // Recompute with the new g, b so the next layer initialises on what it will really see.
  return apply(x, weight(), b);
}

void set_data_init(torch::nn::Module& module, bool on) {
  // include_self would need the module to live in a shared_ptr; check it by hand instead.
  if (auto* self = dynamic_cast<WeightNormConv2dImpl*>(&module)) self->set_data_init(on);
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto wn = std::dynamic_pointer_cast<WeightNormConv2dImpl>(m)) wn->set_data_init(on);
  }
}

void data_dependent_init(torch::nn::Module& module, const std::function<void()>& forward) {
  torch::NoGradGuard no_grad;
  set_data_init(module, true);
  try {
    forward();
  } catch (...) {
    set_data_init(module, false);
    throw;
  }
  // Layers the forward did not reach keep their default g = 1, b = 0.
  set_data_init(module, false);
}

}  // namespace agave::model
