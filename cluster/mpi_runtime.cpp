#include "cluster/mpi_runtime.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cluster/bounded_call.h"
#include "cluster/communicator.h"

namespace agave::cluster {
namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw std::runtime_error(std::string(what) + " failed: " + std::string(msg, len));
  }
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end && *end == '\0' ? static_cast<int>(n) : fallback;
}

}  // namespace

MpiGroup::MpiGroup(MPI_Comm comm, bool owned, double timeout_seconds)
    : comm_(comm), owned_(owned), timeout_seconds_(timeout_seconds) {
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  world_ranks_ = world_ranks_of(comm_);
}

MpiGroup::~MpiGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owned_ && !finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiGroup::barrier() const {
  // bound: cluster.timeout_seconds (run_within).
  run_within(
      "MPI barrier", timeout_seconds_, [&] { check(MPI_Barrier(comm_), "MPI_Barrier"); },
      world_ranks_);
}

std::vector<std::string> MpiGroup::gather(const std::string& mine, int root) const {
  const int len = static_cast<int>(mine.size());
  std::vector<int> lens(rank_ == root ? size_ : 0);
  // bound: cluster.timeout_seconds (run_within), for both gathers.
  run_within(
      "MPI gather (lengths)", timeout_seconds_,
      [&] {
        check(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
      },
      world_ranks_);
  std::vector<int> displs(lens.size(), 0);
  int total = 0;
  for (size_t i = 0; i < lens.size(); ++i) {
    displs[i] = total;
    total += lens[i];
  }
  std::string all(static_cast<size_t>(total), '\0');
  // bound: cluster.timeout_seconds (run_within).
  run_within(
      "MPI gather", timeout_seconds_,
      [&] {
        check(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(),
                          MPI_CHAR, root, comm_),
              "MPI_Gatherv");
      },
      world_ranks_);
  std::vector<std::string> out;
  for (size_t i = 0; i < lens.size(); ++i) out.push_back(all.substr(displs[i], lens[i]));
  return out;
}

std::vector<int64_t> MpiGroup::all_gather(int64_t mine) const {
  std::vector<int64_t> out(size_);
  // bound: cluster.timeout_seconds (run_within).
  run_within(
      "MPI all-gather", timeout_seconds_,
      [&] {
        check(MPI_Allgather(&mine, 1, MPI_INT64_T, out.data(), 1, MPI_INT64_T, comm_),
              "MPI_Allgather");
      },
      world_ranks_);
  return out;
}

std::unique_ptr<MpiGroup> MpiGroup::split(int color, int key) const {
  MPI_Comm sub = MPI_COMM_NULL;
  // bound: cluster.timeout_seconds (run_within).
  run_within(
      "communicator split (MPI_Comm_split)", timeout_seconds_,
      [&] { check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split"); }, world_ranks_);
  return std::make_unique<MpiGroup>(sub, true, timeout_seconds_);
}

ProcessPlacement placement_from_slurm_env() {
  ProcessPlacement p;
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job || !*job) return p;
  p.under_slurm = true;
  p.slurm_job_id = job;
  p.world_rank = env_int("SLURM_PROCID", 0);
  p.world_size = env_int("SLURM_NTASKS", 1);
  p.local_rank = env_int("SLURM_LOCALID", 0);
  p.local_size = env_int("SLURM_NTASKS_PER_NODE", env_int("SLURM_TASKS_PER_NODE", 1));
  return p;
}

MpiRuntime::MpiRuntime(int* argc, char*** argv, double timeout_seconds)
    : timeout_seconds_(timeout_seconds) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Gradient all-reduces may run on a communication thread; ask for full thread support.
    check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_), "MPI_Init_thread");
    finalize_ = true;
  } else {
    MPI_Query_thread(&thread_level_);
  }
  // Errors come back as codes we turn into exceptions with context, instead of aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  world_ = std::make_unique<MpiGroup>(MPI_COMM_WORLD, false, timeout_seconds_);

  const ProcessPlacement slurm = placement_from_slurm_env();
  placement_ = slurm;
  placement_.world_rank = world_->rank();
  placement_.world_size = world_->size();
  // The node-local rank decides the GPU; MPI knows which ranks share memory, whatever the
  // launcher (mpirun, srun, or a bare process).
  MPI_Comm node = MPI_COMM_NULL;
  // bound: cluster.timeout_seconds (run_within); the only MPI call in flight, so a thread level
  // below MPI_THREAD_MULTIPLE (refused by the trainer right after) is no hazard here.
  run_within("node split (MPI_Comm_split_type)", timeout_seconds_, [&] {
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_->rank(), MPI_INFO_NULL,
                              &node),
          "MPI_Comm_split_type");
  });
  MpiGroup local(node, true, timeout_seconds_);
  placement_.local_rank = local.rank();
  placement_.local_size = local.size();
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  placement_.hostname = host;
}

MpiRuntime::~MpiRuntime() {
  // Unwinding an exception: other ranks may be waiting in a collective for this one, and
  // MPI_Finalize would wait for them in turn. Leave MPI up so the handler can MPI_Abort the job.
  if (std::uncaught_exceptions() > 0) return;
  world_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalize_ && !finalized) finalize_within_deadline();
}

void MpiRuntime::finalize_within_deadline() {
  // bound: cluster.timeout_seconds (a watchdog): MPI_Finalize waits for every rank, and one that
  // hangs must not keep this one forever. MPI wants it called from the thread that initialised
  // MPI, so the watchdog is the other thread; past the deadline it ends this process (MPI_Abort
  // could block in the same place).
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    const auto limit = std::chrono::duration<double>(std::clamp(timeout_seconds_, 0.0, 1e7));
    if (cv.wait_for(lock, limit, [&] { return finished; })) return;
    std::fprintf(stderr,
                 "rank %d (%s): MPI_Finalize did not complete within %.0f s "
                 "(cluster.timeout_seconds): a rank of the job hangs; exiting with code 1\n",
                 placement_.world_rank, placement_.hostname.c_str(), timeout_seconds_);
    std::fflush(stderr);
    std::_Exit(1);
  });
  MPI_Finalize();  // bound: the watchdog above
  {
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
}

void MpiRuntime::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace agave::cluster
