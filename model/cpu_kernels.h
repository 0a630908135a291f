// Building blocks of agave's fused element-wise CPU kernels (model/concat_elu.cpp,
// model/gate.cpp): float math on float or bfloat16 storage, loops the compiler vectorises
// (no libm calls, bit-level bfloat16 conversion), split across LibTorch's threads. Internal to
// model/.
#pragma once

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace agave::model::cpu_kernels {

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

// exp(-|v|) in (0, 1] and the logistic sigmoid from it, without overflow for either sign.
inline float sigmoid(float v) {
  const float t = expm1_nonpositive(v > 0.0F ? -v : v) + 1.0F;
  return (v > 0.0F ? 1.0F : t) / (1.0F + t);
}

// True for the tensors the fused kernels take: 4-d on the CPU, float or bfloat16, NCHW or
// channels_last.
inline bool fusable(const torch::Tensor& x) {
  return x.device().is_cpu() && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
         (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

// The tensor as rows of `width` input elements whose two output halves are rows of 2·width:
// per image (C·H·W) in NCHW, per pixel (C) in channels_last.
struct Rows {
  int64_t count;
  int64_t width;
  at::MemoryFormat format;
};

// `x` has the channels of one half (C); the rows of its layout.
inline Rows rows_of(const torch::Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), plane = x.size(2) * x.size(3);
  if (x.is_contiguous()) return {n, c * plane, at::MemoryFormat::Contiguous};
  return {n * plane, c, at::MemoryFormat::ChannelsLast};
}

// The rows of a 2C-channel tensor whose two channel halves pair up element by element (the
// output of concat_elu, the input of the gate): width counts the elements of one half.
inline Rows rows_of_halves(const torch::Tensor& full) {
  const int64_t n = full.size(0), c = full.size(1) / 2, plane = full.size(2) * full.size(3);
  if (full.is_contiguous()) return {n, c * plane, at::MemoryFormat::Contiguous};
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

inline uint16_t* bf16_bits(const torch::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

}  // namespace agave::model::cpu_kernels
