#include "trainer/precision.h"

#include <fstream>
#include <sstream>

namespace agave::trainer {

CpuFeatures CpuFeatures::from_flags(const std::string& flags_line) {
  std::istringstream words(flags_line);
  CpuFeatures f;
  for (std::string w; words >> w;) {
    f.amx_bf16 = f.amx_bf16 || w == "amx_bf16";
    f.avx512_bf16 = f.avx512_bf16 || w == "avx512_bf16";
  }
  return f;
}

CpuFeatures CpuFeatures::of_this_machine() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) == 0) return from_flags(line);
  }
  return {};
}

Numerics choose_numerics(Precision precision, const torch::Device& device, const CpuFeatures& cpu) {
  Numerics n;
  n.bf16 = precision == Precision::kAuto ? device.is_cuda() || cpu.amx_bf16
                                         : precision == Precision::kBf16;
  n.channels_last = !device.is_cuda() || n.bf16;
  return n;
}

Numerics choose_numerics(Precision precision, const torch::Device& device) {
  return choose_numerics(precision, device, CpuFeatures::of_this_machine());
}

std::string describe(const Numerics& numerics) {
  std::string s = numerics.bf16 ? "bf16 autocast" : "fp32";
  return numerics.channels_last ? s + " + channels_last" : s;
}

void apply_layout(const Numerics& numerics, torch::nn::Module& module) {
  if (!numerics.channels_last) return;
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace agave::trainer
