// The training step of a config's model, timed: trainer::TrainStep, the very step agave_trainer
// runs (per-example randomness, bucketed gradient all-reduce, the agreed skip/stop decision,
// Adamax, EMA), in one process (an MPI singleton: the all-reduces run, over one rank), in the
// joint phase, on random images already in memory. No loader, no metrics: the baseline
// agave_trainer's images/s per rank is compared with (bench/run), so the ratio is the trainer's
// own overhead. Under mpirun every rank runs the same step and the all-reduces span the ranks:
// rank 0 prints the slowest rank's step, the images/s of all ranks together, its all-reduce wait
// and the largest rank's peak resident memory.
//
//   bench_train_step [--config FILE] [--set KEY=VALUE]... [--batch B] [--steps N] [--threads T]
//                    [--precision auto|fp32|bf16] [--device cpu|cuda|cuda:K] [--trace FILE]
// --trace runs as many steps again under LibTorch's profiler (after the timed ones, so the
// timing carries no profiler overhead) and writes a chrome://tracing file; bench/op_classes.py
// breaks it down by op class (convolutions, element-wise, casts, likelihood, optimizer, ...).
// Precision follows the trainer (trainer/precision.h): auto = bf16 autocast + channels_last where
// the probe convolution ran faster in bf16 (trainer/precision_probe.h, cached per machine kind),
// fp32 + channels_last elsewhere. --numerics-only prints the choice with the probe's two times.
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cluster/communicator.h"
#include "cluster/mpi_runtime.h"
#include "launcher/config.h"
#include "launcher/host_allocator.h"
#include "model/agave.h"
#include "model/ema.h"
#include "model/example_random.h"
#include "optim/adamax.h"
#include "trainer/phase.h"
#include "trainer/precision.h"
#include "trainer/precision_probe.h"
#include "trainer/train_step.h"
#include "version/version.h"

using Clock = std::chrono::steady_clock;

#if defined(AGAVE_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace {

using namespace agave;

std::unique_ptr<cluster::Communicator> communicator(const cluster::MpiRuntime& mpi,
                                                    const torch::Device& device) {
#if defined(AGAVE_WITH_NCCL)
  if (device.is_cuda())
    return cluster::make_nccl_communicator(mpi.world().comm(), device.index(), 600);
#endif
  if (device.is_cuda()) throw std::runtime_error("--device cuda needs a build with NCCL");
  return cluster::make_mpi_communicator(mpi.world().comm(), 600);
}

void print_gpu_memory(const torch::Device& device) {
#if defined(AGAVE_WITH_CUDA)
  if (device.is_cuda()) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    std::printf("GPU memory in use: %.2f GiB of %.2f GiB\n", (total_b - free_b) / 1073741824.0,
                total_b / 1073741824.0);
  }
#else
  (void)device;
#endif
}

// This process's peak resident memory (Linux reports ru_maxrss in KiB).
double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_train_step: time agave's training step (trainer::TrainStep) on one rank"};
  app.set_version_flag("--version", agave::version::describe("bench_train_step"));
  std::string config = "configs/quickstart.yaml", precision, device_name = "cpu", trace;
  std::vector<std::string> overrides;
  int64_t batch = 16, steps = 5, threads = 1;
  app.add_option("--config", config, "YAML config whose model is timed")->capture_default_str();
  app.add_option("--set", overrides, "KEY=VALUE over the config, as agave_trainer --set");
  app.add_option("--batch", batch, "images per step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--steps", steps, "timed steps (after one warm-up step)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--threads", threads, "LibTorch threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--precision", precision, "auto | fp32 | bf16 (default: the config's)")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
  app.add_option("--device", device_name, "cpu, cuda or cuda:K")->capture_default_str();
  app.add_option("--trace", trace,
                 "after timing, profile as many steps into this chrome://tracing file");
  bool default_malloc = false;
  app.add_flag("--default-malloc", default_malloc,
               "leave glibc malloc at its defaults (the trainer keeps freed memory for reuse)");
  bool numerics_only = false;
  app.add_flag("--numerics-only", numerics_only,
               "print what the precision resolves to on this device and CPU, and exit");
  CLI11_PARSE(app, argc, argv);
  const std::string allocator =
      default_malloc ? "default glibc malloc" : launcher::reuse_freed_tensor_memory();
  try {
    cluster::MpiRuntime mpi(&argc, &argv);
    torch::set_num_threads(static_cast<int>(threads));
    const auto runs = launcher::load_runs(config, overrides);
    const auto& c = runs.front().config;
    auto mode = c.train.precision;
    if (precision == "fp32") mode = trainer::Precision::kFp32;
    if (precision == "bf16") mode = trainer::Precision::kBf16;
    if (precision == "auto") mode = trainer::Precision::kAuto;
    const torch::Device device(device_name);
    std::string note;
    const auto numerics = trainer::resolve_numerics(mode, device, &note);
    if (numerics_only) {
      std::printf("%s\n", trainer::describe_choice(numerics).c_str());
      if (!note.empty()) std::printf("%s\n", note.c_str());
      return 0;
    }
    const auto& o = c.model;
    auto comm = communicator(mpi, device);

    torch::manual_seed(1);
    model::Agave model(o);
    model->to(device);
    const auto x =
        torch::randint(0, 256, {batch, o.image_channels(), o.image_size(), o.image_size()},
                       torch::TensorOptions().dtype(torch::kUInt8));
    const auto indices = torch::arange(batch, torch::kInt64);
    {
      torch::NoGradGuard no_grad;
      model::ExampleRandomScope rng(model::example_keys(1, -1, indices).to(device));
      model->data_init(x.to(device));
    }
    trainer::apply_layout(numerics, *model);
    model::Ema ema(*model, c.train.ema_decay);
    optim::Adamax optimizer(model->parameters(), optim::AdamaxOptions(c.train.optimizer.lr));
    trainer::TrainStepOptions so;
    so.grad_clip = c.train.grad_clip;
    so.bf16 = numerics.bf16;
    so.buckets = {c.cluster.bucket_mb, std::min(1.0, c.cluster.bucket_mb),
                  cluster::overlaps_backward(c.cluster.overlap, comm->backend())};
    trainer::TrainStep step(model, optimizer, ema, *comm, so);
    step.set_phase(trainer::phase_spec({trainer::PhaseKind::kJoint, 1}, c.loss,
                                       c.model.vae().free_bits(), c.model.kind()));

    step.run(x, indices, 0);  // warm-up: first-call allocations and oneDNN primitive creation
    const auto t0 = Clock::now();
    double allreduce = 0;
    // Each step reads its numbers back to the host once (a sync on CUDA too).
    for (int64_t s = 1; s <= steps; ++s) allreduce += step.run(x, indices, s).allreduce_seconds;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    // The slowest rank's step and the largest footprint are what a job sees (the communicator's
    // reductions carry its deadline).
    const double slowest = comm->all_reduce_max(secs);
    const double peak_gib = comm->all_reduce_max(peak_rss_gib());
    if (comm->rank() == 0) {
      std::printf("model %s, batch %lld, %lld step(s), %s, %lld thread(s), %d rank(s)\n",
                  config.c_str(), static_cast<long long>(batch), static_cast<long long>(steps),
                  trainer::describe(numerics).c_str(), static_cast<long long>(threads),
                  comm->size());
      std::printf("allocator: %s\n", allocator.c_str());
      std::printf("step %.4f s, %.3f images/s\n", slowest / steps,
                  static_cast<double>(batch) * comm->size() * steps / slowest);
      std::printf("all-reduce wait %.4f s a step (%.1f %% of rank 0's step)\n", allreduce / steps,
                  100.0 * allreduce / secs);
      std::printf("peak RSS %.2f GiB (largest rank)\n", peak_gib);
    }
    print_gpu_memory(device);
    if (!trace.empty()) {
      {
        torch::autograd::profiler::RecordProfile profile(trace);
        for (int64_t s = steps + 1; s <= 2 * steps; ++s) step.run(x, indices, s);
      }
      std::printf("profile of %lld step(s): %s\n", static_cast<long long>(steps), trace.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
