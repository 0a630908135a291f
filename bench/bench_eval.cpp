// Importance-weighted evaluation throughput against the plain forward pass, one process.
// The IW bound repeats each image K times and runs the model on `batch` rows (image x sample)
// per pass, exactly as trainer::evaluate does (chunk = eval batch size); the baseline is the
// ELBO forward (pixel + KL terms, eval mode, no autograd) on `batch` images per pass.
//
//   bench_eval [--config FILE] [--batch B] [--samples K] [--seconds S] [--threads T]
// Prints "forward ... images/s", "iw ... image*samples/s" and "ratio R" (goal: R >= 0.9).
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "launcher/config.h"
#include "model/agave.h"
#include "version/version.h"

using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Calls `fn` (one untimed warm-up call first) until `min_seconds` have passed; calls per second.
template <typename Fn>
double calls_per_second(Fn fn, double min_seconds) {
  fn();
  int64_t calls = 0;
  const auto t0 = Clock::now();
  do {
    fn();
    ++calls;
  } while (seconds_since(t0) < min_seconds);
  return static_cast<double>(calls) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "configs/quickstart.yaml";
  int64_t batch = 32, samples = 16, threads = 1;
  double seconds = 3;
  CLI::App app{"bench_eval: importance-weighted evaluation throughput against the forward pass"};
  app.set_version_flag("--version", agave::version::describe("bench_eval"));
  app.add_option("--config", config, "config whose model is timed")->capture_default_str();
  app.add_option("--batch", batch, "rows per pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--samples", samples, "K, importance samples per image")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seconds", seconds, "minimum time per measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--threads", threads, "LibTorch threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    torch::set_num_threads(static_cast<int>(threads));
    const auto runs = agave::launcher::load_runs(config, {});
    const auto& o = runs.front().config.model;
    torch::manual_seed(1);
    agave::model::Agave model(o);
    const auto x = torch::randint(
        0, 256, {batch, o.image_channels(), o.image_size(), o.image_size()}, torch::kUInt8);
    model->data_init(x);
    agave::model::ScopedEval eval(*model);
    torch::NoGradGuard no_grad;

    const double fwd = batch * calls_per_second(
                                   [&] {
                                     model->forward(x, {true, false, true});
                                   },
                                   seconds);
    // `batch` images x K samples in batch-row passes: K passes of the same size as the forward.
    const double iw =
        static_cast<double>(batch * samples) *
        calls_per_second([&] { model->importance_weighted_bound(x, samples, batch); }, seconds);
    std::printf("model %s, %dx%dx%d, batch %lld, K %lld, %lld thread(s)\n", config.c_str(),
                static_cast<int>(o.image_channels()), static_cast<int>(o.image_size()),
                static_cast<int>(o.image_size()), static_cast<long long>(batch),
                static_cast<long long>(samples), static_cast<long long>(threads));
    std::printf("forward (ELBO terms)  : %10.2f images/s\n", fwd);
    std::printf("iw bound              : %10.2f image*samples/s\n", iw);
    std::printf("ratio %.3f (goal >= 0.9): %s\n", iw / fwd, iw >= 0.9 * fwd ? "met" : "NOT met");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eval: %s\n", e.what());
    return 1;
  }
  return 0;
}
