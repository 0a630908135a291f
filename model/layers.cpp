#include "model/layers.h"

#include <cmath>
#include <limits>

#include "model/example_random.h"

namespace agave::model {

WeightNormConv2dOptions down_shifted_conv(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                                          torch::ExpandingArray<2> stride) {
  const auto k = *kernel;
  TORCH_CHECK(k[1] % 2 == 1, "down_shifted_conv: kernel width must be odd");
  const int64_t side = (k[1] - 1) / 2;
  return WeightNormConv2dOptions(in, out, kernel).stride(stride).pad({side, side, k[0] - 1, 0});
}

WeightNormConv2dOptions down_right_shifted_conv(int64_t in, int64_t out,
                                                torch::ExpandingArray<2> kernel,
                                                torch::ExpandingArray<2> stride) {
  const auto k = *kernel;
  return WeightNormConv2dOptions(in, out, kernel).stride(stride).pad({k[1] - 1, 0, k[0] - 1, 0});
}

// A transposed conv of kernel k, stride s maps H rows to (H−1)·s + k; PixelCNN++ keeps rows
// [0, H·s), i.e. each output row only receives input rows at or above it, and for the
// down-shifted form centres the columns by dropping (kw−1)/2 on the left.
WeightNormConv2dOptions down_shifted_deconv(int64_t in, int64_t out,
                                            torch::ExpandingArray<2> kernel,
                                            torch::ExpandingArray<2> stride) {
  const auto k = *kernel;
  const auto s = *stride;
  const int64_t left = (k[1] - 1) / 2;
  const int64_t right = k[1] - s[1] - left;
  const int64_t bottom = k[0] - s[0];
  TORCH_CHECK(k[1] % 2 == 1 && right >= 0 && bottom >= 0,
              "down_shifted_deconv: kernel too small for the stride");
  return WeightNormConv2dOptions(in, out, kernel)
      .stride(stride)
      .transposed(true)
      .crop({left, right, 0, bottom});
}

WeightNormConv2dOptions down_right_shifted_deconv(int64_t in, int64_t out,
                                                  torch::ExpandingArray<2> kernel,
                                                  torch::ExpandingArray<2> stride) {
  const auto k = *kernel;
  const auto s = *stride;
  TORCH_CHECK(k[0] >= s[0] && k[1] >= s[1],
              "down_right_shifted_deconv: kernel too small for the stride");
  return WeightNormConv2dOptions(in, out, kernel)
      .stride(stride)
      .transposed(true)
      .crop({0, k[1] - s[1], 0, k[0] - s[0]});
}

WeightNormConv2dOptions nin(int64_t in, int64_t out) {
  return WeightNormConv2dOptions(in, out, {1, 1});
}

WeightNormConv2dOptions plain_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  TORCH_CHECK(kernel % 2 == 1, "plain_conv: kernel must be odd");
  const int64_t p = (kernel - 1) / 2;
  return WeightNormConv2dOptions(in, out, {kernel, kernel}).stride(stride).pad({p, p, p, p});
}

torch::Tensor down_shift(const torch::Tensor& x) {
  return torch::constant_pad_nd(x.slice(2, 0, x.size(2) - 1), {0, 0, 1, 0});
}

torch::Tensor right_shift(const torch::Tensor& x) {
  return torch::constant_pad_nd(x.slice(3, 0, x.size(3) - 1), {1, 0, 0, 0});
}

torch::Tensor concat_elu(const torch::Tensor& x) { return torch::elu(torch::cat({x, -x}, 1)); }

torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1)");
  if (!training || p == 0.0) return x;
  if (auto* scope = ExampleRandomScope::current()) {
    // Training steps: masks per example from (seed, step, example), whatever the rank split.
    return x * scope->dropout_scale_like(x, p);
  }
  const int64_t threshold = std::llround(p * 256.0);
  if (threshold == 0) return x;
  const int64_t n = x.numel();
  auto words =
      torch::randint(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(),
                     {(n + 3) / 4}, x.options().dtype(torch::kInt32));
  // The bytes are i.i.d., so lay them out in x's physical order (channels_last or not) and
  // view them with x's logical shape: the multiply then streams through memory.
  auto bytes = words.view(torch::kUInt8).slice(0, 0, n);
  torch::Tensor mask;
  if (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()) {
    mask = bytes.view({x.size(0), x.size(2), x.size(3), x.size(1)}).permute({0, 3, 1, 2});
  } else {
    mask = bytes.view(x.sizes());
  }
  const double keep = 1.0 - static_cast<double>(threshold) / 256.0;
  return x * (mask >= threshold).to(x.scalar_type()).mul_(1.0 / keep);
}

GatedResnetImpl::GatedResnetImpl(const GatedResnetOptions& options_) : options(options_) {
  const int64_t f = options.filters();
  auto conv = [&](int64_t in, int64_t out) {
    return options.conv() == ShiftedConv::kDown ? down_shifted_conv(in, out)
                                                : down_right_shifted_conv(in, out);
  };
  conv1 = register_module("conv1", WeightNormConv2d(conv(2 * f, f)));
  if (options.skip_channels() > 0) {
    nin_skip = register_module("nin_skip", WeightNormConv2d(nin(2 * options.skip_channels(), f)));
  }
  // PixelCNN++ starts the residual branch small (init_scale 0.1) so deep stacks stay stable.
  conv2 = register_module("conv2", WeightNormConv2d(conv(2 * f, 2 * f).init_scale(0.1)));
  if (options.cond_channels() > 0) {
    cond_conv = register_module(
        "cond_conv",
        WeightNormConv2d(
            plain_conv(options.cond_channels(), 2 * f, options.cond_kernel()).init_scale(0.1)));
  }
}

torch::Tensor GatedResnetImpl::forward(const torch::Tensor& x, const torch::Tensor& skip,
                                       const torch::Tensor& h) {
  TORCH_CHECK(skip.defined() == !nin_skip.is_empty(),
              "GatedResnet: skip input given iff built with skip_channels");
  // An undefined h on a conditioned block: its conditioning contribution is zero (an
  // unconditioned pass, model/agave.h PixelCnnInput::kNone).
  TORCH_CHECK(!h.defined() || !cond_conv.is_empty(),
              "GatedResnet: conditioning given but built without cond_channels");
  auto c1 = conv1(concat_elu(x));
  if (skip.defined()) c1 = c1 + nin_skip(concat_elu(skip));
  c1 = concat_elu(c1);
  if (options.dropout() > 0) c1 = fast_dropout(c1, options.dropout(), is_training());
  auto c2 = conv2(c1);
  if (h.defined()) c2 = c2 + cond_conv(torch::elu(h));
  auto ab = c2.chunk(2, 1);
  return x + ab[0] * torch::sigmoid(ab[1]);
}

}  // namespace agave::model
