// What verifying shard content while training costs (LoaderOptions::verify_checksums,
// docs/data-format.md "Content integrity"): the time to the end of the first epoch of a 1-rank
// loader over a split, with and without verification, for a consumer that takes batches as fast
// as it can (the worst case: the loader never idles, so all hashing is extra work) and for one
// that spends `--step-ms` per batch like a training step (the hashing hides in the idle time).
//
//   bench_verify SHARD_DIR [--split train] [--batch 64] [--step-ms 20] [--steps 200]
//
// Each verdict is cached per process, so every case runs in a fresh child process.
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "data/loader.h"
#include "version/version.h"

namespace {

using Clock = std::chrono::steady_clock;

// Seconds for `max_batches` batches (0: the whole first epoch), sleeping step_ms per batch.
double run_case(const std::string& dir, const std::string& split, int64_t batch, bool verify,
                double step_ms, int64_t max_batches) {
  agave::data::LoaderOptions o;
  o.batch_size = batch;
  o.verify_checksums = verify;
  o.pin_memory = false;
  const auto t0 = Clock::now();
  agave::data::ShardLoader loader(dir, split, o);
  int64_t n = 0;
  while (auto b = loader.next()) {
    if (step_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(step_ms));
    if (++n == max_batches) break;
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double in_child(const std::string& dir, const std::string& split, int64_t batch, bool verify,
                double step_ms, int64_t max_batches) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const double s = run_case(dir, split, batch, verify, step_ms, max_batches);
    (void)!::write(fds[1], &s, sizeof s);
    std::_Exit(0);
  }
  double s = -1;
  (void)!::read(fds[0], &s, sizeof s);
  ::waitpid(pid, nullptr, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, split = "train";
  int64_t batch = 64, steps = 200;
  double step_ms = 20;
  CLI::App app{"bench_verify: the cost of verifying shard checksums while training"};
  app.set_version_flag("--version", agave::version::describe("bench_verify"));
  app.add_option("shards", dir, "shard folder")->required();
  app.add_option("--split", split, "split to read")->capture_default_str();
  app.add_option("--batch", batch, "images per batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--step-ms", step_ms, "consumer work per batch, ms")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--steps", steps, "batches in the consumer case")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (const bool verify : {false, true, false, true}) {
    std::printf("first epoch, no consumer work, verify %-5s: %.3f s\n", verify ? "on" : "off",
                in_child(dir, split, batch, verify, 0, 0));
  }
  for (const bool verify : {false, true}) {
    std::printf("%lld batches with %.0f ms steps,   verify %-5s: %.3f s\n",
                static_cast<long long>(steps), step_ms, verify ? "on" : "off",
                in_child(dir, split, batch, verify, step_ms, steps));
  }
  return 0;
}
