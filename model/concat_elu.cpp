// concat_elu(x) = elu(cat(x, -x) over channels), fused on CPU: one pass that reads x once and
// writes both halves, and a backward that reads the output it saved (the next convolution keeps
// it alive anyway) instead of re-running elu, neg and the slicing of cat. Elsewhere (CUDA, other
// dtypes or layouts) it is the three ATen ops.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "model/layers.h"

namespace agave::model {
namespace {

// Functions the loops inline; each loop is compiled for AVX-512, AVX2 and the baseline and
// the loader picks one (target_clones), so the polynomial below runs 8 or 16 lanes wide.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AGAVE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AGAVE_VECTOR_CLONES
#endif

inline float float_of_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

inline uint32_t bits_of_float(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// exp(v) - 1 for v <= 0 without a libm call (which would keep the loop scalar): exp(v) = 2^k ·
// exp(r) with k = round(v / ln 2) and |r| <= ln 2 / 2 (Cody–Waite split of ln 2), exp(r) - 1 by
// a degree-7 polynomial, and the result as 2^k · expm1(r) + (2^k - 1) so that v near 0 keeps
// its relative accuracy. Within 2 ulp of float for v in [-87, 0]; below, exp(v) < 2^-125 and
// the result is -1 as expm1's.
inline float expm1_nonpositive(float v) {
  v = v < -87.0F ? -87.0F : v;
  constexpr float kRound = 12582912.0F;  // 1.5 · 2^23: adding it rounds to an integer
  const float shifted = v * 1.44269504088896341F + kRound;
  const float k = shifted - kRound;
  const float r = (v - k * 0.693359375F) + k * 2.12194440e-4F;
  float p = 1.9875691500e-4F;
  p = p * r + 1.3981999507e-3F;
  p = p * r + 8.3334519073e-3F;
  p = p * r + 4.1665795894e-2F;
  p = p * r + 1.6666665459e-1F;
  p = p * r + 5.0000001201e-1F;
  const float expm1_r = p * r * r + r;
  const int32_t exponent = static_cast<int32_t>(bits_of_float(shifted) - bits_of_float(kRound));
  const float scale = float_of_bits(static_cast<uint32_t>(exponent + 127) << 23);
  return scale * expm1_r + (scale - 1.0F);
}

inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const uint16_t* p, int64_t i) { return float_of_bits(uint32_t{p[i]} << 16); }
inline void store(float* p, int64_t i, float v) { p[i] = v; }
// Round to nearest even, NaN stays NaN: what c10::BFloat16's conversion does.
inline void store(uint16_t* p, int64_t i, float v) {
  const uint32_t b = bits_of_float(v);
  const uint32_t rounded = (b + 0x7FFFU + ((b >> 16) & 1U)) >> 16;
  p[i] = static_cast<uint16_t>(v != v ? 0x7FC0U : rounded);
}

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

// The tensor as rows of `width` input elements whose two output halves are rows of 2·width:
// per image (C·H·W) in NCHW, per pixel (C) in channels_last.
struct Rows {
  int64_t count;
  int64_t width;
  at::MemoryFormat format;
};

bool fused_layout(const torch::Tensor& x) {
  return x.device().is_cpu() && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
         (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

// `x` has the channels of one half (C); the rows of its layout.
Rows rows_of(const torch::Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), plane = x.size(2) * x.size(3);
  if (x.is_contiguous()) return {n, c * plane, at::MemoryFormat::Contiguous};
  return {n * plane, c, at::MemoryFormat::ChannelsLast};
}

// Calls run(row, first, count) over the elements of every row, split across threads by
// elements, so a few long NCHW rows parallelise as well as many short channels_last ones.
template <typename Run>
void for_each_piece(const Rows& rows, const Run& run) {
  const int64_t total = rows.count * rows.width;
  at::parallel_for(0, total, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t at = begin; at < end;) {
      const int64_t row = at / rows.width, first = at - row * rows.width;
      const int64_t count = std::min(end - at, rows.width - first);
      run(row, first, count);
      at += count;
    }
  });
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
    run(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()),
        reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()), forward_bf16);
  }
  return out;
}

torch::Tensor fused_backward(const torch::Tensor& grad_out, const torch::Tensor& out) {
  const int64_t c = out.size(1) / 2;
  auto x_like = out.narrow(1, 0, c);
  const Rows rows =
      out.is_contiguous()
          ? Rows{out.size(0), c * out.size(2) * out.size(3), at::MemoryFormat::Contiguous}
          : Rows{out.size(0) * out.size(2) * out.size(3), c, at::MemoryFormat::ChannelsLast};
  const auto g = grad_out.to(out.scalar_type()).contiguous(rows.format);
  auto gx = at::empty(x_like.sizes(), out.options().memory_format(rows.format));
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
    auto bits = [](const torch::Tensor& t) {
      return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
    };
    run(bits(g), bits(out), bits(gx), backward_bf16);
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
  if (fused_layout(x)) return ConcatEluFunction::apply(x);
  return torch::elu(torch::cat({x, -x}, 1));
}

torch::Tensor concat_elu_reference(const torch::Tensor& x) {
  return torch::elu(torch::cat({x, -x}, 1));
}

}  // namespace agave::model
