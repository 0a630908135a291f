// AGAVE sampling throughput: the naive sampler (one full PixelCNN pass per pixel, the baseline)
// against the cached one (model/sampler.h, SamplerKind), both in this process on the same model,
// batch and f(z). Prints images/s and the ratio for the quickstart model (28×28×1, 1/32/5) and
// the CIFAR-10 default model (32×32×3, 5/160/10 with the AGAVE stream).
//
// A naive sampling step is one full forward plus one draw and costs the same at every pixel, so
// by default the naive rate is measured over --naive-steps steps and scaled to H·W steps (the
// output says so); --naive-full runs it over whole images instead and then also checks that both
// samplers drew identical images from the same seed. The cached sampler always runs whole images.
//
//   bench_sampling [--threads N] [--batch N] [--naive-steps K] [--naive-full] [--quick-only]
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench_cli.h"
#include "model/agave.h"
#include "model/likelihood.h"
#include "model/sampler.h"
#include "version/version.h"

namespace {

using agave::model::Agave;
using agave::model::AgaveOptions;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Args {
  int threads = 1;
  int64_t batch = 16;
  int64_t naive_steps = 3;
  bool naive_full = false;
  bool quick_only = false;
};

// Seconds per naive step: exactly the body of the SamplerKind::kNaive loop (model/sampler.cpp).
double naive_seconds_per_step(Agave& model, const torch::Tensor& fz, int64_t steps) {
  torch::NoGradGuard no_grad;
  agave::model::ScopedEval eval(*model);
  auto& net = model->pixelcnn;
  const int64_t n = fz.size(0), c = model->options().image_channels();
  const int64_t s = model->options().image_size();
  auto features = model->cond_features(fz);
  auto canvas = torch::zeros({n, c, s, s});
  using torch::indexing::Slice;
  const auto t0 = Clock::now();
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t i = k / s, j = k % s;
    auto params = net->forward_with_features(canvas, features);
    auto p = params.index({Slice(), Slice(), Slice(i, i + 1), Slice(j, j + 1)});
    auto drawn = agave::model::sample_from_discretized_mix_logistic(
        p, net->options.nr_logistic_mix(), /*quantize=*/true);
    canvas.index_put_({Slice(), Slice(), Slice(i, i + 1), Slice(j, j + 1)}, drawn);
  }
  return seconds_since(t0) / static_cast<double>(steps);
}

void run(const char* name, const AgaveOptions& options, const Args& args) {
  torch::manual_seed(0);
  Agave model(options);
  const int64_t c = options.image_channels(), s = options.image_size();
  {
    // Data-dependent init on noise images, so activations have trained-like scales.
    auto x = torch::randint(0, 256, {4, c, s, s}).to(torch::kFloat);
    model->data_init(x);
  }
  model->eval();
  torch::Tensor fz;
  {
    torch::NoGradGuard no_grad;
    fz = model->vae->sample_prior(args.batch).fz;
  }
  const double pixels = static_cast<double>(s * s);

  torch::manual_seed(1);
  auto t0 = Clock::now();
  auto cached = agave::model::sample_pixels(model, fz, agave::model::SamplerKind::kCached);
  const double cached_s = seconds_since(t0);
  const double cached_ips = args.batch / cached_s;

  double naive_ips;
  std::string how, equal = "not checked (--naive-full)";
  if (args.naive_full) {
    torch::manual_seed(1);
    t0 = Clock::now();
    auto naive = agave::model::sample_pixels(model, fz, agave::model::SamplerKind::kNaive);
    naive_ips = args.batch / seconds_since(t0);
    how = "whole images";
    equal = torch::equal(naive, cached) ? "yes" : "NO";
  } else {
    const double per_step = naive_seconds_per_step(model, fz, args.naive_steps);
    naive_ips = args.batch / (per_step * pixels);
    how = std::to_string(args.naive_steps) + " of " + std::to_string(s * s) + " steps, scaled (" +
          std::to_string(per_step) + " s/step)";
  }
  std::printf(
      "%-34s batch %3lld | naive %10.5f img/s (%s) | cached %8.4f img/s (%.1f s) | "
      "ratio %7.1fx | identical samples: %s\n",
      name, static_cast<long long>(args.batch), naive_ips, how.c_str(), cached_ips, cached_s,
      cached_ips / naive_ips, equal.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"bench_sampling: the naive PixelCNN sampler against the cached one"};
  app.set_version_flag("--version", agave::version::describe("bench_sampling"));
  agave::bench::add_count(app, "--threads", args.threads, "LibTorch threads");
  agave::bench::add_count(app, "--batch", args.batch, "images sampled at once");
  agave::bench::add_count(app, "--naive-steps", args.naive_steps,
                          "naive sampler steps timed and scaled to a whole image");
  app.add_flag("--naive-full", args.naive_full,
               "run the naive sampler over whole images and compare the samples");
  app.add_flag("--quick-only", args.quick_only, "only the quickstart model");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(args.threads);
  std::printf("bench_sampling: %d thread(s), fp32; naive = one full PixelCNN pass per pixel\n",
              args.threads);

  using namespace agave::model;
  run("quickstart 28x28x1 1/32/5",
      AgaveOptions()
          .image_channels(1)
          .image_size(28)
          .vae(VaeOptions().depth(2).width(32).latent_channels(8).latent_resolution(7))
          .pixelcnn(PixelCnnOptions().nr_resnet(1).nr_filters(32).nr_logistic_mix(5).dropout(0.0))
          .aux(AuxOptions().resolution(14).color_bins(32)),
      args);
  if (!args.quick_only) {
    // configs/cifar10_agave.yaml: PixelCNN++ 5/160/10 (dropout off when sampling), aux 32×32.
    run("cifar10 32x32x3 5/160/10 + stream",
        AgaveOptions().vae(
            VaeOptions().depth(4).width(160).latent_channels(32).latent_resolution(16)),
        args);
  }
  return 0;
}
