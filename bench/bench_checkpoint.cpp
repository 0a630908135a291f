// Sharded checkpoint save and load of a config's full training state (model parameters and
// buffers, EMA shadow, Adamax moments and step counts, one RNG state per rank: what
// agave_trainer saves), with 1 and 2 ranks, against one process writing the same bytes with
// plain write() + fsync() into the same folder.
//
//   bench_checkpoint [--config FILE] [--dir DIR] [--ranks 1,2] [--repeats N] [--threads T]
//
// Without MPI around it (the driver), it runs itself under `mpirun -np R` for each R of --ranks
// (as root with --allow-run-as-root; --oversubscribe), then the baseline in this process, and
// prints a table and the R-vs-first ratio. --dir (default: a new folder under $TMPDIR or /tmp)
// must be on the file system the checkpoints of interest go to; everything written there is
// removed at the end. Each rank reports the slowest rank's time; load reads the checkpoint the
// same ranks just saved (warm page cache: it measures HDF5 reads and the SHA-256 checks, not the
// disk).
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "checkpoint/sharded_checkpoint.h"
#include "checkpoint/training_state.h"
#include "cluster/communicator.h"
#include "cluster/mpi_runtime.h"
#include "io/checksum.h"
#include "launcher/config.h"
#include "model/agave.h"
#include "model/ema.h"
#include "optim/adamax.h"
#include "trainer/precision.h"
#include "version/version.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string config = "configs/cifar10_agave.yaml";
  std::string dir;
  std::vector<int> ranks = {1, 2};
  int repeats = 2;
  int threads = 1;
  bool worker = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of the calling thread: the work of save and load (HDF5, SHA-256) runs on it; MPI's
// waits spin on the communicator's own thread. Tells work from waiting on a busy machine.
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The trainer's checkpoint state (trainer.cpp, TrainingState): model parameters and buffers,
// EMA shadow, Adamax exp_avg / exp_inf / step per parameter; channels_last weights where the
// trainer uses them. The moments get random values (a trained model's are not zero).
struct State {
  agave::model::Agave model{nullptr};
  std::unique_ptr<agave::model::Ema> ema;
  std::unique_ptr<agave::optim::Adamax> optimizer;
  std::unique_ptr<agave::checkpoint::TrainingState> training_state;
  std::map<std::string, torch::Tensor>& tensors() { return training_state->tensors(); }
};

std::unique_ptr<State> build_state(const agave::launcher::Config& c) {
  auto s = std::make_unique<State>();
  torch::manual_seed(1);
  s->model = agave::model::Agave(c.model);
  agave::trainer::apply_layout(
      agave::trainer::choose_numerics(c.train.precision, torch::kCPU, std::nullopt), *s->model);
  s->ema = std::make_unique<agave::model::Ema>(*s->model, c.train.ema_decay);
  s->optimizer = std::make_unique<agave::optim::Adamax>(
      s->model->parameters(), agave::optim::AdamaxOptions(c.train.optimizer.lr));
  const auto params = s->model->parameters();
  auto& states = s->optimizer->states();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    auto& st = states[i];
    st.exp_avg = torch::randn_like(params[i], torch::MemoryFormat::Preserve).mul_(1e-3);
    st.exp_inf = torch::rand_like(params[i], torch::MemoryFormat::Preserve).mul_(1e-2);
    st.step = 1000;
  }
  // The trainer's own key scheme over these tensors.
  s->training_state =
      std::make_unique<agave::checkpoint::TrainingState>(*s->model, *s->ema, *s->optimizer);
  return s;
}

// One rank of `mpirun -np R bench_checkpoint --worker`: saves `repeats` checkpoints and loads
// each back; rank 0 prints "result <ranks> <bytes> <save s> <load s> <save cpu s> <load cpu s>"
// per repeat (each the slowest rank's).
int worker(int argc, char** argv, const Args& a) {
  agave::cluster::MpiRuntime mpi(&argc, &argv);
  torch::set_num_threads(a.threads);
  auto comm = agave::cluster::make_mpi_communicator(mpi.world().comm(), 600);
  const auto runs = agave::launcher::load_runs(a.config, {});
  const auto state = build_state(runs.front().config);
  agave::checkpoint::ShardedCheckpoint ckpt(a.dir, a.repeats + 1, *comm);
  const auto rng = at::detail::getDefaultCPUGenerator().get_state();
  for (int r = 0; r < a.repeats; ++r) {
    agave::checkpoint::CheckpointMeta meta;
    meta.step = 1000 * (r + 1);
    meta.phase = "joint";
    meta.world_size = comm->size();
    meta.config = "bench";
    comm->barrier();
    const auto t0 = Clock::now();
    const double c0 = thread_cpu_seconds();
    const auto saved = ckpt.save(meta, state->tensors(), {{agave::checkpoint::keys::kCpuRng, rng}});
    const double save_cpu = comm->all_reduce_max(thread_cpu_seconds() - c0);
    const double save_s = comm->all_reduce_max(seconds_since(t0));

    std::map<std::string, torch::Tensor> into;
    for (const auto& [name, t] : state->tensors()) into[name] = torch::empty_like(t);
    std::map<std::string, torch::Tensor> rank_local = {
        {agave::checkpoint::keys::kCpuRng, torch::Tensor()}};
    comm->barrier();
    const auto t1 = Clock::now();
    const double c1 = thread_cpu_seconds();
    ckpt.load(saved.dir, into, &rank_local);
    const double load_cpu = comm->all_reduce_max(thread_cpu_seconds() - c1);
    const double load_s = comm->all_reduce_max(seconds_since(t1));
    if (r == 0) {
      for (const auto& [name, t] : state->tensors()) {
        if (!torch::equal(into.at(name), t)) {
          throw std::runtime_error("loaded tensor " + name + " differs from the saved one");
        }
      }
    }
    if (comm->rank() == 0) {
      std::printf("result %d %lld %.6f %.6f %.6f %.6f\n", comm->size(),
                  static_cast<long long>(saved.bytes), save_s, load_s, save_cpu, load_cpu);
      std::fflush(stdout);
    }
  }
  comm->barrier();
  return 0;
}

// The baseline: `bytes` from memory to one file with write() in 8 MiB pieces, then fsync, in
// this process; then the same file read back through SHA-256 (what load's check costs alone).
std::pair<double, double> baseline(const std::string& dir, int64_t bytes) {
  const std::string path = dir + "/baseline.bin";
  const size_t chunk = 8 << 20;
  std::vector<char> buf(chunk);
  std::mt19937_64 gen(1);
  for (size_t i = 0; i + 8 <= chunk; i += 8) {
    const uint64_t v = gen();
    std::memcpy(buf.data() + i, &v, 8);
  }
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot create");
  for (int64_t left = bytes; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(chunk)));
    if (::write(fd, buf.data(), n) != static_cast<ssize_t>(n)) {
      ::close(fd);
      throw std::runtime_error(path + ": write failed");
    }
    left -= static_cast<int64_t>(n);
  }
  if (::fsync(fd) != 0) throw std::runtime_error(path + ": fsync failed");
  ::close(fd);
  const double write_s = seconds_since(t0);
  const auto t1 = Clock::now();
  agave::io::file_digest(path, agave::io::Digest::Algorithm::kSha256);
  const double hash_s = seconds_since(t1);
  fs::remove(path);
  return {write_s, hash_s};
}

struct Row {
  int ranks = 0;
  int64_t bytes = 0;
  double save_s = 1e300, load_s = 1e300;  // best of the repeats
  double save_cpu = 0, load_cpu = 0;      // of the same repeats
};

int driver(const char* self, const Args& a) {
  const std::string dir = a.dir.empty()
                              ? (fs::path(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") /
                                 ("agave-bench-checkpoint-" + std::to_string(::getpid())))
                                    .string()
                              : a.dir;
  fs::create_directories(dir);
  std::vector<Row> rows;
  for (const int np : a.ranks) {
    const std::string sub = dir + "/np" + std::to_string(np);
    std::ostringstream cmd;
    cmd << "mpirun --oversubscribe" << (::geteuid() == 0 ? " --allow-run-as-root" : "") << " -np "
        << np << " " << self << " --worker --config " << a.config << " --dir " << sub
        << " --repeats " << a.repeats << " --threads " << a.threads;
    std::fprintf(stderr, "bench_checkpoint: %s\n", cmd.str().c_str());
    FILE* p = ::popen(cmd.str().c_str(), "r");
    if (!p) throw std::runtime_error("cannot run " + cmd.str());
    Row row;
    row.ranks = np;
    char line[512];
    while (std::fgets(line, sizeof(line), p)) {
      int n = 0;
      long long bytes = 0;
      double save_s = 0, load_s = 0, save_cpu = 0, load_cpu = 0;
      if (std::sscanf(line, "result %d %lld %lf %lf %lf %lf", &n, &bytes, &save_s, &load_s,
                      &save_cpu, &load_cpu) == 6) {
        row.bytes = bytes;
        if (save_s < row.save_s) row.save_s = save_s, row.save_cpu = save_cpu;
        if (load_s < row.load_s) row.load_s = load_s, row.load_cpu = load_cpu;
      } else {
        std::fputs(line, stderr);
      }
    }
    const int status = ::pclose(p);
    fs::remove_all(sub);
    if (status != 0 || row.bytes == 0) {
      throw std::runtime_error("the " + std::to_string(np) + "-rank run failed: " + cmd.str());
    }
    rows.push_back(row);
  }
  const auto [write_s, hash_s] = baseline(dir, rows.front().bytes);
  if (a.dir.empty()) fs::remove_all(dir);

  const double mb = rows.front().bytes / 1e6;
  std::printf("checkpoint of %s: %.1f MB (model, EMA, Adamax state), best of %d, %d thread(s)\n",
              a.config.c_str(), mb, a.repeats, a.threads);
  std::printf("%-34s %8s %9s %8s %8s %9s %8s\n", "", "save s", "save MB/s", "cpu s", "load s",
              "load MB/s", "cpu s");
  for (const auto& r : rows) {
    std::printf("%-34s %8.3f %9.1f %8.3f %8.3f %9.1f %8.3f\n",
                ("sharded, " + std::to_string(r.ranks) + " rank(s)").c_str(), r.save_s,
                r.bytes / 1e6 / r.save_s, r.save_cpu, r.load_s, r.bytes / 1e6 / r.load_s,
                r.load_cpu);
  }
  std::printf("%-34s %8.3f %9.1f %8s %8.3f %9.1f %8s\n", "write+fsync / read+SHA-256, 1 proc",
              write_s, rows.front().bytes / 1e6 / write_s, "", hash_s,
              rows.front().bytes / 1e6 / hash_s, "");
  std::printf(
      "(cpu s: the slowest rank's CPU seconds in save / load itself; load reads every\n"
      " tensor on every rank, so its MB/s is per rank)\n");
  for (size_t i = 1; i < rows.size(); ++i) {
    std::printf("ratio %d vs %d ranks: save %.2fx, load %.2fx (speed-up; >1 is faster)\n",
                rows[i].ranks, rows[0].ranks, rows[0].save_s / rows[i].save_s,
                rows[0].load_s / rows[i].load_s);
  }
  std::printf("sharded save vs write+fsync (%d rank(s)): %.2f\n", rows.front().ranks,
              write_s / rows.front().save_s);
  // One line for scripts (bench/run): MB/s per row, in --ranks order, then the baselines.
  std::printf("summary: mb=%.1f", mb);
  for (const auto& r : rows) {
    std::printf(" save%d=%.1f load%d=%.1f", r.ranks, r.bytes / 1e6 / r.save_s, r.ranks,
                r.bytes / 1e6 / r.load_s);
  }
  std::printf(" write=%.1f hash=%.1f\n", mb / write_s, mb / hash_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"bench_checkpoint: sharded checkpoint save and load against plain writes"};
  app.set_version_flag("--version", agave::version::describe("bench_checkpoint"));
  app.add_option("--config", a.config, "config whose training state is saved")
      ->capture_default_str();
  app.add_option("--dir", a.dir, "folder to write in (default: a new one under $TMPDIR or /tmp)");
  agave::bench::add_count(app, "--ranks", a.ranks, "rank counts to time, e.g. 1,2")->delimiter(',');
  agave::bench::add_count(app, "--repeats", a.repeats, "saves and loads per rank count");
  agave::bench::add_count(app, "--threads", a.threads, "LibTorch threads per rank");
  // The driver starts itself under mpirun with --worker: one measuring rank.
  app.add_flag("--worker", a.worker)->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    if (a.worker) return worker(argc, argv, a);
    return driver(fs::read_symlink("/proc/self/exe").c_str(), a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
    return 1;
  }
}
