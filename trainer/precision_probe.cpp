#include "trainer/precision_probe.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>

#include "model/autocast.h"
#include "trainer/precision_cache.h"

namespace agave::trainer {
namespace {

using Clock = std::chrono::steady_clock;

// A PixelCNN++ layer between the CPU configs' 32 filters and the paper's 160, at CIFAR's
// 32×32, a batch of 8 per rank: 3×3, 96 → 96 channels.
constexpr int64_t kBatch = 8, kChannels = 96, kSize = 32, kKernel = 3;
constexpr int kWarmups = 1, kMinRounds = 2, kMaxRounds = 8;
constexpr double kBudgetSeconds = 1.2;  // of timed rounds, after the warm-ups

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct ProbeTensors {
  torch::Tensor x, weight, bias;
};

ProbeTensors probe_tensors() {
  auto gen = at::detail::createCPUGenerator(0);  // the global generator is the run's alone
  const auto cl = at::MemoryFormat::ChannelsLast;
  ProbeTensors t;
  t.x = torch::randn({kBatch, kChannels, kSize, kSize}, gen).contiguous(cl).requires_grad_();
  t.weight = (torch::randn({kChannels, kChannels, kKernel, kKernel}, gen) * 0.05)
                 .contiguous(cl)
                 .requires_grad_();
  t.bias = torch::zeros({kChannels}).requires_grad_();
  return t;
}

// One forward + backward (input and weight gradients, as a layer inside a network needs).
double pass_seconds(ProbeTensors& t, bool bf16) {
  const auto start = Clock::now();
  torch::Tensor y;
  {
    model::AutocastGuard autocast(bf16, /*cuda=*/false);
    y = torch::conv2d(t.x, t.weight, t.bias, 1, kKernel / 2);
  }
  y.backward(torch::ones_like(y));
  t.x.mutable_grad() = torch::Tensor();
  t.weight.mutable_grad() = torch::Tensor();
  t.bias.mutable_grad() = torch::Tensor();
  return seconds_since(start);
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    const auto first = line.find_first_not_of(" \t", colon + 1);
    return first == std::string::npos ? "unknown CPU" : line.substr(first);
  }
  return "unknown CPU";
}

void set_note(std::string* note, const std::string& text) {
  if (note != nullptr) *note = text;
}

// The cached times, or measured ones (then stored).
ProbeTimes probe_times(const std::optional<std::filesystem::path>& cache_file, std::string* note) {
  const std::string key = probe_key();
  if (cache_file) {
    if (auto hit = PrecisionCache(*cache_file).find(key)) return *hit;
  }
  const auto times = time_probe_convolution();
  if (!cache_file) {
    set_note(note, "no cache folder ($XDG_CACHE_HOME and $HOME unset): measured every start");
    return times;
  }
  // Another process of this machine kind may have stored its verdict while this one measured:
  // the first stored wins, so that runs started together (a run and its tests) agree.
  if (auto hit = PrecisionCache(*cache_file).find(key)) return *hit;
  try {
    PrecisionCache(*cache_file).store(key, times);
  } catch (const std::exception& e) {
    set_note(note, std::string("precision cache not written: ") + e.what());
  }
  return times;
}

}  // namespace

ProbeTimes time_probe_convolution() {
  at::AutoGradMode grad(true);  // also when a caller computes without gradients
  auto t = probe_tensors();
  for (int i = 0; i < kWarmups; ++i) {
    pass_seconds(t, false);
    pass_seconds(t, true);
  }
  double fp32 = std::numeric_limits<double>::infinity(), bf16 = fp32;
  const auto start = Clock::now();
  for (int round = 0; round < kMaxRounds; ++round) {
    if (round >= kMinRounds && seconds_since(start) > kBudgetSeconds) break;
    fp32 = std::min(fp32, pass_seconds(t, false));
    bf16 = std::min(bf16, pass_seconds(t, true));
  }
  return ProbeTimes{fp32 * 1e3, bf16 * 1e3, /*cached=*/false};
}

std::string probe_key() {
  return cpu_model_name() + " | LibTorch " + TORCH_VERSION + " | conv " + std::to_string(kKernel) +
         "x" + std::to_string(kKernel) + " " + std::to_string(kChannels) + "->" +
         std::to_string(kChannels) + " on " + std::to_string(kBatch) + "x" + std::to_string(kSize) +
         "x" + std::to_string(kSize) + " channels_last";
}

Numerics resolve_numerics(Precision precision, const torch::Device& device,
                          const std::optional<std::filesystem::path>& cache, std::string* note) {
  if (precision != Precision::kAuto || device.is_cuda()) {
    return choose_numerics(precision, device, std::nullopt);
  }
  try {
    return choose_numerics(precision, device, probe_times(cache, note));
  } catch (const std::exception& e) {  // e.g. no bf16 convolution on this CPU
    set_note(note, std::string("precision probe failed, fp32: ") + e.what());
    return choose_numerics(precision, device, std::nullopt);
  }
}

Numerics resolve_numerics(Precision precision, const torch::Device& device, std::string* note) {
  return resolve_numerics(precision, device, PrecisionCache::default_file(), note);
}

}  // namespace agave::trainer
