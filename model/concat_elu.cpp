// concat_elu(x) = elu(cat(x, -x) over channels), fused on CPU: one pass that reads x once and
// writes both halves, and a backward that reads the output it saved (the next convolution keeps
// it alive anyway) instead of re-running elu, neg and the slicing of cat. Elsewhere (CUDA, other
// dtypes or layouts) it is the three ATen ops.
#include "model/cpu_kernels.h"
#include "model/layers.h"

namespace agave::model {
namespace {

using namespace cpu_kernels;  // NOLINT: the kernels' vocabulary

// elu(v) into pos, elu(-v) into neg; one exponential: of -|v|, which is the half at or below 0.
template <typename T>
inline void forward_run(const T* x, T* pos, T* neg, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(x, i);
    const float m = expm1_nonpositive(v > 0.0F ? -v : v);
    store(pos, i, v > 0.0F ? v : m);
    store(neg, i, v > 0.0F ? m : -v);
  }
}

// d elu(u)/du from the output o = elu(u): 1 where o > 0, else exp(u) = o + 1.
template <typename T>
inline void backward_run(const T* g_pos, const T* g_neg, const T* pos, const T* neg, T* gx,
                         int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float p = load(pos, i), q = load(neg, i);
    const float dp = p > 0.0F ? 1.0F : p + 1.0F;
    const float dq = q > 0.0F ? 1.0F : q + 1.0F;
    store(gx, i, load(g_pos, i) * dp - load(g_neg, i) * dq);
  }
}

AGAVE_VECTOR_CLONES void forward_f32(const float* x, float* pos, float* neg, int64_t n) {
  forward_run(x, pos, neg, n);
}
AGAVE_VECTOR_CLONES void forward_bf16(const uint16_t* x, uint16_t* pos, uint16_t* neg, int64_t n) {
  forward_run(x, pos, neg, n);
}
AGAVE_VECTOR_CLONES void backward_f32(const float* g_pos, const float* g_neg, const float* pos,
                                      const float* neg, float* gx, int64_t n) {
  backward_run(g_pos, g_neg, pos, neg, gx, n);
}
AGAVE_VECTOR_CLONES void backward_bf16(const uint16_t* g_pos, const uint16_t* g_neg,
                                       const uint16_t* pos, const uint16_t* neg, uint16_t* gx,
                                       int64_t n) {
  backward_run(g_pos, g_neg, pos, neg, gx, n);
}

torch::Tensor fused_forward(const torch::Tensor& x) {
  const Rows rows = rows_of(x);
  auto out = at::empty({x.size(0), 2 * x.size(1), x.size(2), x.size(3)},
                       x.options().memory_format(rows.format));
  const int64_t w = rows.width;
  auto run = [&](auto* in, auto* o, auto kernel) {
    for_each_piece(rows, [&](int64_t row, int64_t first, int64_t count) {
      auto* half = o + row * 2 * w + first;
      kernel(in + row * w + first, half, half + w, count);
    });
  };
  if (x.scalar_type() == torch::kFloat) {
    run(x.data_ptr<float>(), out.data_ptr<float>(), forward_f32);
  } else {
    run(bf16_bits(x), bf16_bits(out), forward_bf16);
  }
  return out;
}

torch::Tensor fused_backward(const torch::Tensor& grad_out, const torch::Tensor& out) {
  const Rows rows = rows_of_halves(out);
  const int64_t c = out.size(1) / 2;
  const auto g = grad_out.to(out.scalar_type()).contiguous(rows.format);
  auto gx = at::empty({out.size(0), c, out.size(2), out.size(3)},
                      out.options().memory_format(rows.format));
  const int64_t w = rows.width;
  auto run = [&](auto* gp, auto* o, auto* gxp, auto kernel) {
    for_each_piece(rows, [&](int64_t row, int64_t first, int64_t count) {
      const int64_t at = row * 2 * w + first;
      kernel(gp + at, gp + at + w, o + at, o + at + w, gxp + row * w + first, count);
    });
  };
  if (out.scalar_type() == torch::kFloat) {
    run(g.data_ptr<float>(), out.data_ptr<float>(), gx.data_ptr<float>(), backward_f32);
  } else {
    run(bf16_bits(g), bf16_bits(out), bf16_bits(gx), backward_bf16);
  }
  return gx;
}

struct ConcatEluFunction : torch::autograd::Function<ConcatEluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    auto out = fused_forward(x);
    ctx->save_for_backward({out});
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {fused_backward(grads[0], ctx->get_saved_variables()[0])};
  }
};

}  // namespace

torch::Tensor concat_elu(const torch::Tensor& x) {
  if (fusable(x)) return ConcatEluFunction::apply(x);
  return torch::elu(torch::cat({x, -x}, 1));
}

torch::Tensor concat_elu_reference(const torch::Tensor& x) {
  return torch::elu(torch::cat({x, -x}, 1));
}

}  // namespace agave::model
