#include "trainer/precision.h"

#include <fstream>

namespace agave::trainer {

bool cpu_has_bf16_units() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" amx_bf16") != std::string::npos ||
             line.find(" avx512_bf16") != std::string::npos;
    }
  }
  return false;
}

bool use_bf16(Precision precision, const torch::Device& device) {
  if (precision != Precision::kAuto) return precision == Precision::kBf16;
  return device.is_cuda() || cpu_has_bf16_units();
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace agave::trainer
