#include "model/example_random.h"

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
  const auto draw = static_cast<int64_t>(
      splitmix64(static_cast<uint64_t>(stream) * 2 + static_cast<uint64_t>(salt)) & 0xFFFFFFFFULL);
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
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1)");
  const int64_t threshold = std::llround(p * 16777216.0);
  auto keep = hashes(like, next_stream_++, 0).__rshift__(8).ge(threshold).view(like.sizes());
  if (channels_last_only(like)) keep = keep.contiguous(at::MemoryFormat::ChannelsLast);
  return keep;
}

torch::Tensor example_normal_like(const torch::Tensor& like) {
  if (auto* scope = ExampleRandomScope::current()) {
    return scope->normal_like(like).to(like.scalar_type());
  }
  return torch::randn_like(like);
}

}  // namespace agave::model
