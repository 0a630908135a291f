// The gated resnet's output x + a · sigmoid(b), (a, b) the channel halves of one tensor, fused on
// CPU: one pass forward, and one backward from the saved (a, b) that writes both halves of their
// gradient into one tensor (the ATen ops run sigmoid, two products, the sum, and a zero-filled
// cat for chunk's backward). Elsewhere (CUDA, other dtypes, mixed layouts) it is the ATen ops.
#include "model/cpu_kernels.h"
#include "model/layers.h"

namespace agave::model {
namespace {

using namespace cpu_kernels;  // NOLINT: the kernels' vocabulary

template <typename T>
inline void forward_run(const T* x, const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    store(out, i, load(x, i) + load(a, i) * sigmoid(load(b, i)));
  }
}

// d/da = s, d/db = a · s · (1 − s), s = sigmoid(b); s · (1 − s) as t / (1 + t)², t = exp(−|b|),
// which keeps its relative accuracy where s is within an ulp of 1 (1 − s would not).
template <typename T>
inline void backward_run(const T* g, const T* a, const T* b, T* ga, T* gb, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(b, i), gi = load(g, i);
    const float t = expm1_nonpositive(v > 0.0F ? -v : v) + 1.0F;
    const float r = 1.0F / (1.0F + t);
    store(ga, i, gi * (v > 0.0F ? r : t * r));
    store(gb, i, gi * load(a, i) * (t * r * r));
  }
}

AGAVE_VECTOR_CLONES void forward_f32(const float* x, const float* a, const float* b, float* out,
                                     int64_t n) {
  forward_run(x, a, b, out, n);
}
AGAVE_VECTOR_CLONES void forward_bf16(const uint16_t* x, const uint16_t* a, const uint16_t* b,
                                      uint16_t* out, int64_t n) {
  forward_run(x, a, b, out, n);
}
AGAVE_VECTOR_CLONES void backward_f32(const float* g, const float* a, const float* b, float* ga,
                                      float* gb, int64_t n) {
  backward_run(g, a, b, ga, gb, n);
}
AGAVE_VECTOR_CLONES void backward_bf16(const uint16_t* g, const uint16_t* a, const uint16_t* b,
                                       uint16_t* ga, uint16_t* gb, int64_t n) {
  backward_run(g, a, b, ga, gb, n);
}

bool fused_pair(const torch::Tensor& x, const torch::Tensor& ab) {
  return fusable(x) && fusable(ab) && x.scalar_type() == ab.scalar_type() &&
         x.size(0) == ab.size(0) && 2 * x.size(1) == ab.size(1) && x.size(2) == ab.size(2) &&
         x.size(3) == ab.size(3) && x.is_contiguous() == ab.is_contiguous();
}

torch::Tensor fused_forward(const torch::Tensor& x, const torch::Tensor& ab) {
  const Rows rows = rows_of(x);
  auto out = at::empty(x.sizes(), x.options().memory_format(rows.format));
  const int64_t w = rows.width;
  auto run = [&](auto* xp, auto* abp, auto* o, auto kernel) {
    for_each_piece(rows, [&](int64_t row, int64_t first, int64_t count) {
      const auto* a = abp + row * 2 * w + first;
      kernel(xp + row * w + first, a, a + w, o + row * w + first, count);
    });
  };
  if (x.scalar_type() == torch::kFloat) {
    run(x.data_ptr<float>(), ab.data_ptr<float>(), out.data_ptr<float>(), forward_f32);
  } else {
    run(bf16_bits(x), bf16_bits(ab), bf16_bits(out), forward_bf16);
  }
  return out;
}

torch::Tensor fused_backward(const torch::Tensor& grad_out, const torch::Tensor& ab) {
  const Rows rows = rows_of_halves(ab);
  const auto g = grad_out.to(ab.scalar_type()).contiguous(rows.format);
  auto g_ab = at::empty(ab.sizes(), ab.options().memory_format(rows.format));
  const int64_t w = rows.width;
  auto run = [&](auto* gp, auto* abp, auto* gabp, auto kernel) {
    for_each_piece(rows, [&](int64_t row, int64_t first, int64_t count) {
      const int64_t at = row * 2 * w + first;
      kernel(gp + row * w + first, abp + at, abp + at + w, gabp + at, gabp + at + w, count);
    });
  };
  if (ab.scalar_type() == torch::kFloat) {
    run(g.data_ptr<float>(), ab.data_ptr<float>(), g_ab.data_ptr<float>(), backward_f32);
  } else {
    run(bf16_bits(g), bf16_bits(ab), bf16_bits(g_ab), backward_bf16);
  }
  return g_ab;
}

struct GateFunction : torch::autograd::Function<GateFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& ab) {
    ctx->save_for_backward({ab});
    return fused_forward(x, ab);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // The residual passes its gradient through unchanged.
    return {grads[0], fused_backward(grads[0], ctx->get_saved_variables()[0])};
  }
};

}  // namespace

torch::Tensor gated_residual(const torch::Tensor& x, const torch::Tensor& ab) {
  if (fused_pair(x, ab)) return GateFunction::apply(x, ab);
  return gated_residual_reference(x, ab);
}

torch::Tensor gated_residual_reference(const torch::Tensor& x, const torch::Tensor& ab) {
  auto halves = ab.chunk(2, 1);
  return x + halves[0] * torch::sigmoid(halves[1]);
}

}  // namespace agave::model
