// Forward+backward throughput of the conditional PixelCNN++ (with its discretized-logistic loss)
// on this CPU: fp32 NCHW, the baseline, against bf16 autocast with channels_last tensors.
// Prints images/s, GFLOP/s (2 FLOP per MAC, backward counted as 2× forward) and the ratio, for
// the CIFAR-10 default model and the quickstart (Fashion-MNIST) model.
//
//   bench_model_pixelcnn [--threads N] [--iters N] [--cifar-batch N] [--quick-batch N]
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench_cli.h"
#include "model/autocast.h"
#include "model/likelihood.h"
#include "model/pixelcnn.h"
#include "version/version.h"

namespace {

using agave::model::PixelCnn;
using agave::model::PixelCnnImpl;
using agave::model::PixelCnnOptions;
using agave::model::WeightNormConv2dImpl;

// Index after `prefix` in a name like "down_ul.7.conv2", or −1.
int64_t index_after(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return -1;
  return std::stoll(name.substr(prefix.size()));
}

// Forward multiply-accumulates per image, from each weight-normalised layer's kernel size and
// the resolution its name places it at (scale s has (H/2^s)·(W/2^s) pixels).
double forward_macs(PixelCnnImpl& net, int64_t h, int64_t w) {
  const int64_t nr = net.options.nr_resnet();
  const int64_t blocks = net.cond_options.blocks_per_scale();
  double macs = 0;
  for (const auto& item : net.named_modules()) {
    auto wn = std::dynamic_pointer_cast<WeightNormConv2dImpl>(item.value());
    if (!wn) continue;
    const std::string& name = item.key();
    int64_t scale = 0, i;
    if ((i = index_after(name, "up_u.")) >= 0 || (i = index_after(name, "up_ul.")) >= 0) {
      scale = i / nr;
    } else if ((i = index_after(name, "down_u.")) >= 0 ||
               (i = index_after(name, "down_ul.")) >= 0) {
      scale = i < nr ? 2 : (i < 2 * nr + 1 ? 1 : 0);
    } else if ((i = index_after(name, "u_downsample.")) >= 0 ||
               (i = index_after(name, "ul_downsample.")) >= 0 ||
               (i = index_after(name, "cond_downsample.")) >= 0) {
      scale = i + 1;
    } else if ((i = index_after(name, "u_upsample.")) >= 0 ||
               (i = index_after(name, "ul_upsample.")) >= 0) {
      scale = 2 - i;  // a transposed conv spends its kernel once per *input* pixel
    } else if ((i = index_after(name, "cond_blocks.")) >= 0) {
      scale = i / blocks;
    } else if ((i = index_after(name, "cond_layers.")) >= 0) {
      scale = agave::model::position_scale(i, nr);
    }
    macs += static_cast<double>(wn->v.numel()) * (h >> scale) * (w >> scale);
  }
  return macs;
}

struct Result {
  double images_per_s, gflops;
};

Result run(PixelCnn& net, int64_t batch, int64_t channels, int64_t size, bool fast, int iters) {
  net->train();
  if (fast) {
    for (auto& p : net->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  auto memory = fast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto x = (torch::randint(0, 256, {batch, channels, size, size}).to(torch::kFloat) / 127.5 - 1)
               .contiguous(memory);
  auto cond = torch::randn({batch, channels, size, size}).contiguous(memory);
  auto step = [&] {
    torch::Tensor loss;
    {
      agave::model::AutocastGuard autocast(fast, /*cuda=*/false);
      auto params = net->forward(x, cond);
      loss = -agave::model::discretized_mix_logistic_log_prob(x, params).mean();
    }
    net->zero_grad();
    loss.backward();
  };
  step();  // warm-up: oneDNN primitive creation, allocator
  auto t0 = std::chrono::steady_clock::now();
  for (int it = 0; it < iters; ++it) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double images = static_cast<double>(batch) * iters;
  const double flop = 2.0 * 3.0 * forward_macs(*net, size, size) * images;
  return {images / s, flop / s / 1e9};
}

void compare(const char* label, const PixelCnnOptions& options, int64_t channels, int64_t size,
             int64_t batch, int iters) {
  torch::manual_seed(0);
  PixelCnn net(options, channels, channels);
  const double gmac = forward_macs(*net, size, size) / 1e9;
  auto base = run(net, batch, channels, size, /*fast=*/false, iters);
  auto fast = run(net, batch, channels, size, /*fast=*/true, iters);
  std::printf(
      "%-10s %5.2f GMAC/img fwd | fp32 NCHW %8.2f img/s %7.1f GFLOP/s | bf16 channels_last "
      "%8.2f img/s %7.1f GFLOP/s | ratio %.2fx\n",
      label, gmac, base.images_per_s, base.gflops, fast.images_per_s, fast.gflops,
      fast.images_per_s / base.images_per_s);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, iters = 2;
  int64_t cifar_batch = 16, quick_batch = 32;
  CLI::App app{
      "bench_model_pixelcnn: PixelCNN++ forward+backward, fp32 NCHW against bf16 "
      "channels_last"};
  app.set_version_flag("--version", agave::version::describe("bench_model_pixelcnn"));
  agave::bench::add_count(app, "--threads", threads, "LibTorch threads");
  agave::bench::add_count(app, "--iters", iters, "timed steps per measurement");
  agave::bench::add_count(app, "--cifar-batch", cifar_batch, "images per step, CIFAR-10 model");
  agave::bench::add_count(app, "--quick-batch", quick_batch, "images per step, quickstart model");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(threads);
  {
    PixelCnn plain(PixelCnnOptions(), 3, 0);
    std::printf("CIFAR-default PixelCNN++ without conditioning: %.2f GMAC per 32x32 image\n",
                forward_macs(*plain, 32, 32) / 1e9);
  }
  std::printf("PixelCNN++ (with conditioning stream) forward+backward+loss, %d threads\n", threads);
  compare("quickstart", PixelCnnOptions().nr_resnet(1).nr_filters(32).nr_logistic_mix(5).dropout(0),
          1, 28, quick_batch, iters);
  compare("cifar10", PixelCnnOptions(), 3, 32, cifar_batch, iters);
  return 0;
}
