#include "model/example_random.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace agave::model {
namespace {

constexpr int64_t kMask32 = 0xFFFFFFFF;

thread_local ExampleRandomScope* current_scope = nullptr;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A 32-bit integer hash (xorshift-multiply, full avalanche) applied in place to int64 values in
// [0, 2³²). Both multipliers are below 2³¹, so no product leaves int64: the result is exact and
// identical on every device.
void mix32_(torch::Tensor& x) {
  x.bitwise_xor_(x.__rshift__(16));
  x.mul_(int64_t{0x7feb352d}).bitwise_and_(kMask32);
  x.bitwise_xor_(x.__rshift__(15));
  x.mul_(int64_t{0x2c1b3c6d}).bitwise_and_(kMask32);
  x.bitwise_xor_(x.__rshift__(16));
}

bool channels_last_only(const torch::Tensor& t) {
  return t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous();
}

// mix32_ on one value in 32-bit arithmetic: the tensor ops multiply in int64 and keep the low 32
// bits, which is what a uint32 multiply keeps, so the bits are the same (and the loop below
// vectorises).
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x2c1b3c6dU;
  return x ^ (x >> 16);
}

uint64_t draw_of(int64_t stream, int64_t salt) {
  return splitmix64(static_cast<uint64_t>(stream) * 2 + static_cast<uint64_t>(salt)) &
         0xFFFFFFFFULL;
}

// The CPU loop computes what hashes() computes with a dozen full passes of tensor ops, in one
// vectorised pass. It serves tensors laid out contiguously or channels_last; others take the
// tensor path.
bool fused_on_cpu(const torch::Tensor& like) {
  return like.device().is_cpu() && like.dim() >= 1 &&
         (like.is_contiguous() || channels_last_only(like));
}

// out[k] = kept or zero for k < count, for logical element indices j0 + k·j_step of an example
// whose row hash is `row`: kept where the element's 24-bit draw is at least `threshold`.
template <typename T>
void fill_run(T* out, int64_t count, uint32_t row, uint32_t j0, uint32_t j_step, uint32_t threshold,
              T kept, T zero) {
  for (int64_t k = 0; k < count; ++k) {
    const uint32_t j = j0 + static_cast<uint32_t>(k) * j_step;
    out[k] = (mix32(j * 0x9E3779B9U + row) >> 8) >= threshold ? kept : zero;
  }
}

// Fills `out` (laid out like `like`, fused_on_cpu) with kept / zero by the draw `draw` of each
// example's key, at each element's logical position (as hashes() numbers them).
template <typename T>
void fill_kept(const torch::Tensor& like, const torch::Tensor& keys, uint64_t draw,
               uint32_t threshold, T kept, T zero, T* out) {
  const int64_t n = like.size(0);
  TORCH_CHECK(n == keys.size(0), "ExampleRandomScope: a draw for ", n, " examples in a scope of ",
              keys.size(0));
  const int64_t m = n > 0 ? like.numel() / n : 0;
  const auto cpu_keys = keys.to(torch::kCPU).contiguous();
  const int64_t* key = cpu_keys.data_ptr<int64_t>();
  auto row_of = [&](int64_t i) {
    return mix32(static_cast<uint32_t>(static_cast<uint64_t>(key[i]) ^ draw));
  };
  if (channels_last_only(like)) {
    // Memory runs over channels fastest: logical index c·HW + hw sits at hw·C + c.
    const int64_t channels = like.size(1), plane = like.size(2) * like.size(3);
    at::parallel_for(0, n * plane, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = r / plane, hw = r % plane;
        fill_run(out + i * m + hw * channels, channels, row_of(i), static_cast<uint32_t>(hw),
                 static_cast<uint32_t>(plane), threshold, kept, zero);
      }
    });
    return;
  }
  at::parallel_for(0, n * m, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t at = begin; at < end;) {
      const int64_t i = at / m;
      const int64_t stop = std::min(end, (i + 1) * m);
      fill_run(out + at, stop - at, row_of(i), static_cast<uint32_t>(at - i * m), 1U, threshold,
               kept, zero);
      at = stop;
    }
  });
}

int64_t dropout_threshold(double p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1)");
  return std::llround(p * 16777216.0);
}

}  // namespace

torch::Tensor example_keys(uint64_t seed, int64_t step, const torch::Tensor& example_ids) {
  TORCH_CHECK(example_ids.dim() == 1, "example_keys: ids must be a vector");
  auto ids = example_ids.to(torch::kCPU, torch::kInt64).contiguous();
  auto keys = torch::empty_like(ids);
  const uint64_t base = splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(step));
  const auto* in = ids.data_ptr<int64_t>();
  auto* out = keys.data_ptr<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    out[i] = static_cast<int64_t>(splitmix64(base ^ static_cast<uint64_t>(in[i])) & 0xFFFFFFFFULL);
  }
  return keys;
}

ExampleRandomScope::ExampleRandomScope(torch::Tensor keys)
    : keys_(std::move(keys)), previous_(current_scope) {
  TORCH_CHECK(keys_.dim() == 1 && keys_.scalar_type() == torch::kInt64,
              "ExampleRandomScope: keys must be an int64 vector");
  current_scope = this;
}

ExampleRandomScope::~ExampleRandomScope() { current_scope = previous_; }

ExampleRandomScope* ExampleRandomScope::current() { return current_scope; }

torch::Tensor ExampleRandomScope::hashes(const torch::Tensor& like, int64_t stream,
                                         int64_t salt) const {
  TORCH_CHECK(like.dim() >= 1 && like.size(0) == keys_.size(0), "ExampleRandomScope: a draw for ",
              like.dim() >= 1 ? like.size(0) : 0, " examples in a scope of ", keys_.size(0));
  const int64_t n = like.size(0);
  const int64_t m = n > 0 ? like.numel() / n : 0;
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(like.device());
  const auto draw = static_cast<int64_t>(draw_of(stream, salt));
  // One key per (example, draw), then one hash per element of the example's logical layout.
  auto row = keys_.to(like.device()).bitwise_xor(draw);
  mix32_(row);
  auto h =
      torch::arange(m, opts).mul_(int64_t{0x9E3779B9}).add(row.view({n, 1})).bitwise_and_(kMask32);
  mix32_(h);
  return h;
}

torch::Tensor ExampleRandomScope::uniform_like(const torch::Tensor& like) {
  auto h = hashes(like, next_stream_++, 0);
  return h.__rshift__(8).to(torch::kFloat).mul_(1.0 / 16777216.0).view(like.sizes());
}

torch::Tensor ExampleRandomScope::normal_like(const torch::Tensor& like) {
  const int64_t stream = next_stream_++;
  // Box–Muller on two independent uniforms; u1 in (0, 1) keeps the log finite.
  auto u1 =
      hashes(like, stream, 0).__rshift__(8).to(torch::kFloat).add_(0.5).mul_(1.0 / 16777216.0);
  auto u2 = hashes(like, stream, 1).__rshift__(8).to(torch::kFloat).mul_(2.0 * M_PI / 16777216.0);
  return u1.log_().mul_(-2.0).sqrt_().mul_(u2.cos_()).view(like.sizes());
}

torch::Tensor ExampleRandomScope::keep_mask_like(const torch::Tensor& like, double p) {
  const int64_t threshold = dropout_threshold(p);
  const int64_t stream = next_stream_++;
  if (fused_on_cpu(like)) {
    auto keep = torch::empty_like(like, like.options().dtype(torch::kBool));
    fill_kept(like, keys_, draw_of(stream, 0), static_cast<uint32_t>(threshold), true, false,
              keep.data_ptr<bool>());
    return keep;
  }
  auto keep = hashes(like, stream, 0).__rshift__(8).ge(threshold).view(like.sizes());
  if (channels_last_only(like)) keep = keep.contiguous(at::MemoryFormat::ChannelsLast);
  return keep;
}

torch::Tensor ExampleRandomScope::dropout_scale_like(const torch::Tensor& like, double p) {
  const int64_t threshold = dropout_threshold(p);
  // The kept fraction the 24-bit threshold gives, so the expectation is exactly x.
  const double scale = 1.0 / (1.0 - static_cast<double>(threshold) / 16777216.0);
  if (!fused_on_cpu(like)) {
    return keep_mask_like(like, p).to(like.scalar_type()).mul_(scale);
  }
  auto out = torch::empty_like(like);
  const uint64_t draw = draw_of(next_stream_++, 0);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, like.scalar_type(), "dropout_scale", [&] {
        // The value the tensor path's mask.to(dtype).mul_(scale) gives a kept element, written as
        // its bits: a select of plain integers vectorises, one of c10::BFloat16 did not (5x
        // slower).
        using Bits =
            std::conditional_t<sizeof(scalar_t) == 2, uint16_t,
                               std::conditional_t<sizeof(scalar_t) == 4, uint32_t, uint64_t>>;
        static_assert(sizeof(Bits) == sizeof(scalar_t));
        const auto kept = static_cast<scalar_t>(static_cast<at::opmath_type<scalar_t>>(scale));
        const auto zero = static_cast<scalar_t>(0);
        Bits kept_bits, zero_bits;
        std::memcpy(&kept_bits, &kept, sizeof(Bits));
        std::memcpy(&zero_bits, &zero, sizeof(Bits));
        fill_kept(like, keys_, draw, static_cast<uint32_t>(threshold), kept_bits, zero_bits,
                  reinterpret_cast<Bits*>(out.data_ptr<scalar_t>()));
      });
  return out;
}

torch::Tensor example_normal_like(const torch::Tensor& like) {
  if (auto* scope = ExampleRandomScope::current()) {
    return scope->normal_like(like).to(like.scalar_type());
  }
  return torch::randn_like(like);
}

}  // namespace agave::model
