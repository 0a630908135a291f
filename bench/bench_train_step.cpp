// The bare training step of a config's model in one process: forward (joint phase: pixel, aux
// and KL terms), loss, backward, Adamax step, EMA update, on random images already in memory.
// No loader, no MPI, no metrics: the baseline agave_trainer's images/s per rank is compared
// with (bench/run), so the ratio is the trainer's own overhead.
//
//   bench_train_step [--config FILE] [--batch B] [--steps N] [--threads T]
//                    [--precision auto|fp32|bf16] [--device cpu|cuda|cuda:K]
// Precision follows the trainer: auto = bf16 autocast + channels_last weights where the CPU has
// bf16 matrix units (AMX or AVX512-BF16), fp32 otherwise.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "launcher/config.h"
#include "model/agave.h"
#include "model/ema.h"
#include "trainer/adamax.h"
#include "trainer/autocast.h"
#include "trainer/precision.h"

using Clock = std::chrono::steady_clock;

#if defined(AGAVE_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

int main(int argc, char** argv) {
  std::string config = "configs/quickstart.yaml", precision, device_name = "cpu";
  int64_t batch = 16, steps = 5, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--config") {
      config = argv[i + 1];
    } else if (a == "--batch") {
      batch = std::atoll(argv[i + 1]);
    } else if (a == "--steps") {
      steps = std::atoll(argv[i + 1]);
    } else if (a == "--threads") {
      threads = std::atoll(argv[i + 1]);
    } else if (a == "--device") {
      device_name = argv[i + 1];
    } else if (a == "--precision") {
      precision = argv[i + 1];
    } else {
      std::fprintf(stderr, "bench_train_step: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    torch::set_num_threads(static_cast<int>(threads));
    const auto runs = agave::launcher::load_runs(config, {});
    const auto& c = runs.front().config;
    if (precision.empty()) precision = c.train.precision;
    const torch::Device device(device_name);
    const bool bf16 = agave::trainer::use_bf16(precision, device);
    const auto& o = c.model;
    torch::manual_seed(1);
    agave::model::Agave model(o);
    model->to(device);
    const auto x = torch::randint(
        0, 256, {batch, o.image_channels(), o.image_size(), o.image_size()},
        torch::TensorOptions().dtype(torch::kUInt8).device(device));
    {
      torch::NoGradGuard no_grad;
      model->data_init(x);
      if (bf16) agave::trainer::to_channels_last(*model);
    }
    agave::model::Ema ema(*model, c.train.ema_decay);
    agave::trainer::Adamax optimizer(model->parameters(),
                                     agave::trainer::AdamaxOptions(c.train.optimizer.lr));
    const agave::model::LossSelection all{true, true, true};
    auto step = [&] {
      optimizer.zero_grad();
      agave::model::LossTerms terms;
      {
        agave::trainer::AutocastGuard autocast(bf16, device.is_cuda());
        terms = model->forward(x, all);
      }
      auto loss = agave::model::AgaveImpl::loss(terms, c.loss.lambda, all);
      loss.backward();
      optimizer.step();
      ema.update();
      return loss.item<double>();
    };
    step();  // warm-up: first-call allocations and oneDNN primitive creation
    const auto t0 = Clock::now();
    for (int64_t s = 0; s < steps; ++s) step();  // loss.item() syncs each step on CUDA too
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("model %s, batch %lld, %lld step(s), %s, %lld thread(s)\n", config.c_str(),
                static_cast<long long>(batch), static_cast<long long>(steps),
                bf16 ? "bf16 autocast + channels_last" : "fp32", static_cast<long long>(threads));
    std::printf("step %.4f s, %.3f images/s\n", secs / steps, batch * steps / secs);
#if defined(AGAVE_WITH_CUDA)
    if (device.is_cuda()) {
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      std::printf("GPU memory in use: %.2f GiB of %.2f GiB\n", (total_b - free_b) / 1073741824.0,
                  total_b / 1073741824.0);
    }
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
