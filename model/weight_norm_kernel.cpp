#include "model/weight_norm_kernel.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace agave::model {
namespace {

// Σ a[i]·b[i] over n values in a fixed order, accumulated in double: 8 running sums (one
// vector register), then their total. The order, not the thread, decides the rounding, and
// double keeps the radial term of the backward (a difference of nearly equal terms when dW is
// nearly parallel to V) as exact as the tensor ops' cascade sums, so runs whose gradients were
// summed in another order (other rank counts) stay as close as before.
template <typename A>
double dot(const A* a, const float* b, int64_t n) {
  constexpr int64_t kLanes = 8;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      acc[l] += static_cast<double>(static_cast<float>(a[i + l])) * b[i + l];
    }
  }
  double sum = 0;
  for (double partial : acc) sum += partial;
  for (; i < n; ++i) sum += static_cast<double>(static_cast<float>(a[i])) * b[i];
  return sum;
}

// Channels per task: enough values that a task outweighs the scheduling.
int64_t grain(int64_t block) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, block)); }

template <typename Out>
void forward_channels(const float* v, const float* g, float* norm, Out* w, int64_t channels,
                      int64_t block) {
  at::parallel_for(0, channels, grain(block), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float* vc = v + c * block;
      norm[c] = static_cast<float>(std::sqrt(dot(vc, vc, block)));
      const float scale = g[c] / norm[c];
      Out* wc = w + c * block;
      for (int64_t i = 0; i < block; ++i) wc[i] = static_cast<Out>(vc[i] * scale);
    }
  });
}

template <typename Grad>
void backward_channels(const Grad* dw, const float* v, const float* g, const float* norm, float* dv,
                       float* dg, int64_t channels, int64_t block) {
  at::parallel_for(0, channels, grain(block), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const Grad* dwc = dw + c * block;
      const float* vc = v + c * block;
      const double n = norm[c];
      const double along = dot(dwc, vc, block);  // dW · V
      dg[c] = static_cast<float>(along / n);
      const auto scale = static_cast<float>(g[c] / n);
      const auto radial = static_cast<float>(g[c] / n * along / (n * n));
      float* dvc = dv + c * block;
      for (int64_t i = 0; i < block; ++i) {
        dvc[i] = scale * static_cast<float>(dwc[i]) - radial * vc[i];
      }
    }
  });
}

class WeightNormFunction : public torch::autograd::Function<WeightNormFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& v,
                               const torch::Tensor& g, c10::ScalarType out) {
    const int64_t channels = v.size(0), block = v.numel() / channels;
    const auto gain = g.contiguous();
    auto norm = torch::empty({channels}, v.options());
    auto w = torch::empty_like(v, v.options().dtype(out));  // V's strides
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, out, "fused_weight_norm", [&] {
      forward_channels(v.data_ptr<float>(), gain.data_ptr<float>(), norm.data_ptr<float>(),
                       w.data_ptr<scalar_t>(), channels, block);
    });
    ctx->save_for_backward({v, gain, norm});
    return w;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &v = saved[0], &g = saved[1], &norm = saved[2];
    auto dw = grads[0];
    if (!dw.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    if (dw.scalar_type() != at::kBFloat16) dw = dw.to(torch::kFloat);
    // Channel blocks must line up value for value with V's.
    if (dw.strides() != v.strides()) dw = torch::empty_like(v, dw.options()).copy_(dw);
    const int64_t channels = v.size(0), block = v.numel() / channels;
    auto dv = torch::empty_like(v);
    auto dg = torch::empty({channels}, v.options());
    AT_DISPATCH_FLOATING_TYPES_AND(
        at::kBFloat16, dw.scalar_type(), "fused_weight_norm_backward", [&] {
          backward_channels(dw.data_ptr<scalar_t>(), v.data_ptr<float>(), g.data_ptr<float>(),
                            norm.data_ptr<float>(), dv.data_ptr<float>(), dg.data_ptr<float>(),
                            channels, block);
        });
    return {dv, dg.view_as(g), torch::Tensor()};
  }
};

}  // namespace

bool fused_weight_norm_applies(const torch::Tensor& v) {
  if (!v.defined() || v.dim() != 4 || !v.device().is_cpu() || v.scalar_type() != at::kFloat ||
      v.size(0) == 0) {
    return false;
  }
  const bool dense = v.is_contiguous() || v.is_contiguous(at::MemoryFormat::ChannelsLast);
  return dense && v.stride(0) == v.numel() / v.size(0);
}

torch::Tensor fused_weight_norm(const torch::Tensor& v, const torch::Tensor& g,
                                c10::ScalarType out) {
  TORCH_CHECK(fused_weight_norm_applies(v),
              "fused_weight_norm: V must be a dense fp32 CPU conv kernel, got ", v.sizes(), " ",
              v.scalar_type());
  TORCH_CHECK(g.numel() == v.size(0) && g.scalar_type() == at::kFloat,
              "fused_weight_norm: one fp32 gain per output channel");
  TORCH_CHECK(out == at::kFloat || out == at::kBFloat16,
              "fused_weight_norm: W is fp32 or bf16, not ", out);
  return WeightNormFunction::apply(v, g, out);
}

}  // namespace agave::model
