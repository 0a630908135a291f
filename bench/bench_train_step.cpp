// The bare training step of a config's model in one process: forward (joint phase: pixel, aux
// and KL terms), loss, backward, Adamax step, EMA update, on random images already in memory.
// No loader, no MPI, no metrics: the baseline agave_trainer's images/s per rank is compared
// with (bench/run), so the ratio is the trainer's own overhead.
//
//   bench_train_step [--config FILE] [--batch B] [--steps N] [--threads T]
//                    [--precision auto|fp32|bf16]
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

using Clock = std::chrono::steady_clock;

namespace {

bool cpu_has_bf16_units() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" amx_bf16") != std::string::npos ||
             line.find(" avx512_bf16") != std::string::npos;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "configs/quickstart.yaml", precision;
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
    const bool bf16 = precision == "bf16" || (precision == "auto" && cpu_has_bf16_units());
    const auto& o = c.model;
    torch::manual_seed(1);
    agave::model::Agave model(o);
    const auto x = torch::randint(
        0, 256, {batch, o.image_channels(), o.image_size(), o.image_size()}, torch::kUInt8);
    {
      torch::NoGradGuard no_grad;
      model->data_init(x);
      if (bf16) {
        for (auto& p : model->parameters()) {
          if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
        }
      }
    }
    agave::model::Ema ema(*model, c.train.ema_decay);
    agave::trainer::Adamax optimizer(model->parameters(),
                                     agave::trainer::AdamaxOptions(c.train.optimizer.lr));
    const agave::model::LossSelection all{true, true, true};
    auto step = [&] {
      optimizer.zero_grad();
      agave::model::LossTerms terms;
      {
        agave::trainer::AutocastGuard autocast(bf16, false);
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
    for (int64_t s = 0; s < steps; ++s) step();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("model %s, batch %lld, %lld step(s), %s, %lld thread(s)\n", config.c_str(),
                static_cast<long long>(batch), static_cast<long long>(steps),
                bf16 ? "bf16 autocast + channels_last" : "fp32", static_cast<long long>(threads));
    std::printf("step %.4f s, %.3f images/s\n", secs / steps, batch * steps / secs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
