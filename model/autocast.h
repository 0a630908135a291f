#pragma once
// bf16 autocast for one scope (the forward pass), on CPU or CUDA, across LibTorch 1.13 and 2.x:
// LibTorch 2.4 made the autocast API per device type and deprecated the CPU/GPU-specific calls
// (pytorch/pytorch#124359). The likelihood math casts to fp32 itself (model/likelihood.h).
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#define AGAVE_DEVICE_AUTOCAST_API \
  (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace agave::model {

// The dtype a convolution on `device` runs in here: autocast's lower precision when autocast is
// on for that device type, else fp32 (what a parameter in fp32 gives).
inline c10::ScalarType convolution_dtype(const c10::Device& device) {
#if AGAVE_DEVICE_AUTOCAST_API
  const auto type = device.type();
  if (at::autocast::is_autocast_enabled(type)) return at::autocast::get_autocast_dtype(type);
#else
  if (device.is_cpu() && at::autocast::is_cpu_enabled()) {
    return at::autocast::get_autocast_cpu_dtype();
  }
  if (device.is_cuda() && at::autocast::is_enabled()) return at::autocast::get_autocast_gpu_dtype();
#endif
  return at::kFloat;
}

class AutocastGuard {
 public:
  AutocastGuard(bool enabled, bool cuda) : enabled_(enabled), cuda_(cuda) {
    if (!enabled_) return;
#if AGAVE_DEVICE_AUTOCAST_API
    const auto dev = cuda_ ? at::kCUDA : at::kCPU;
    was_ = at::autocast::is_autocast_enabled(dev);
    at::autocast::set_autocast_dtype(dev, at::kBFloat16);
    at::autocast::set_autocast_enabled(dev, true);
#else
    if (cuda_) {
      was_ = at::autocast::is_enabled();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      was_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    // Leaving the outermost autocast scope must drop the cast-weight cache, or it grows.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if AGAVE_DEVICE_AUTOCAST_API
    at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, was_);
#else
    if (cuda_) {
      at::autocast::set_enabled(was_);
    } else {
      at::autocast::set_cpu_enabled(was_);
    }
#endif
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  bool cuda_;
  bool was_ = false;
};

}  // namespace agave::model
