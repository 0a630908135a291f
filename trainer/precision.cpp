#include "trainer/precision.h"

#include <fmt/format.h>

namespace agave::trainer {

Numerics choose_numerics(Precision precision, const torch::Device& device,
                         const std::optional<ProbeTimes>& probe) {
  Numerics n;
  if (precision != Precision::kAuto) {
    n.bf16 = precision == Precision::kBf16;
  } else if (device.is_cuda()) {
    n.bf16 = true;
  } else {
    n.probe = probe;
    n.bf16 = probe && probe->bf16_ms > 0 && probe->bf16_ms < probe->fp32_ms;
  }
  n.channels_last = !device.is_cuda() || n.bf16;
  return n;
}

std::string describe(const Numerics& numerics) {
  std::string s = numerics.bf16 ? "bf16 autocast" : "fp32";
  return numerics.channels_last ? s + " + channels_last" : s;
}

std::string describe_choice(const Numerics& numerics) {
  if (!numerics.probe) return describe(numerics);
  const auto& p = *numerics.probe;
  return fmt::format(
      "{} (auto: probe convolution forward + backward fp32 {:.1f} ms, bf16 {:.1f} ms, {})",
      describe(numerics), p.fp32_ms, p.bf16_ms, p.cached ? "cached" : "measured");
}

nlohmann::json to_json(const Numerics& numerics) {
  nlohmann::json j = {{"bf16", numerics.bf16}, {"channels_last", numerics.channels_last}};
  if (numerics.probe) {
    j["probe"] = {{"fp32_ms", numerics.probe->fp32_ms},
                  {"bf16_ms", numerics.probe->bf16_ms},
                  {"cached", numerics.probe->cached}};
  }
  return j;
}

Numerics numerics_from_json(const nlohmann::json& j) {
  Numerics n;
  n.bf16 = j.at("bf16").get<bool>();
  n.channels_last = j.at("channels_last").get<bool>();
  if (j.contains("probe")) {
    const auto& p = j["probe"];
    n.probe = ProbeTimes{p.at("fp32_ms").get<double>(), p.at("bf16_ms").get<double>(),
                         p.at("cached").get<bool>()};
  }
  return n;
}

void apply_layout(const Numerics& numerics, torch::nn::Module& module) {
  if (!numerics.channels_last) return;
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace agave::trainer
