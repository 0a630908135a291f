#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "cluster/activity.h"
#include "cluster/bounded_call.h"
#include "cluster/communicator.h"
#include "cluster/job_channel.h"

namespace agave::cluster {
namespace {

MPI_Datatype mpi_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt32:
      return MPI_INT32_T;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kUInt8:
      return MPI_UINT8_T;
    default:
      throw std::invalid_argument(std::string("MPI collectives: unsupported dtype ") +
                                  std::string(c10::toString(t.scalar_type())));
  }
}

void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(what + " failed: " + std::string(msg, len));
}

void require_cpu_contiguous(const torch::Tensor& t, const char* op) {
  if (!t.device().is_cpu() || !t.is_contiguous()) {
    throw std::invalid_argument(std::string("MPI ") + op +
                                ": needs a contiguous CPU tensor (CUDA tensors use NCCL)");
  }
}

// The worker's queue, shared with the worker thread: after a timeout the communicator lets the
// thread go (it may stay blocked in MPI until the job is aborted) instead of joining it.
struct WorkerState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool stop = false;
  std::atomic<bool> timed_out{false};
};

void work_loop(const std::shared_ptr<WorkerState>& w) {
  while (true) {
    std::function<void()> op;
    {
      std::unique_lock<std::mutex> lock(w->mu);
      w->cv.wait(lock, [&] { return w->stop || !w->queue.empty(); });
      if (w->queue.empty()) return;  // stop and nothing left
      op = std::move(w->queue.front());
      w->queue.pop_front();
    }
    op();
  }
}

// A wait longer than any real job would use: waits are capped here, so a huge configured timeout
// cannot overflow the clock arithmetic.
constexpr double kMaxWaitSeconds = 1e7;

class MpiWork : public Work {
 public:
  MpiWork(std::shared_future<void> f, std::string what, double timeout, int rank, int size,
          std::vector<int> peers, std::shared_ptr<WorkerState> worker)
      : future_(std::move(f)),
        what_(std::move(what)),
        timeout_(std::min(timeout, kMaxWaitSeconds)),
        rank_(rank),
        size_(size),
        peers_(std::move(peers)),
        worker_(std::move(worker)) {}
  void wait() override {
    if (future_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      WaitingScope waiting(what_);
      if (future_.wait_for(std::chrono::duration<double>(timeout_)) != std::future_status::ready) {
        worker_->timed_out = true;
        collective_timed_out(stall_report(what_, timeout_, rank_, size_, peers_));
      }
    }
    future_.get();  // rethrows an MPI error from the worker
  }
  bool done() override {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

 private:
  std::shared_future<void> future_;
  std::string what_;
  double timeout_;
  int rank_, size_;
  std::vector<int> peers_;
  std::shared_ptr<WorkerState> worker_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, double timeout_seconds) : timeout_(timeout_seconds) {
    // bound: cluster.timeout_seconds (run_within); every rank of the group duplicates.
    run_within("communicator set-up (MPI_Comm_dup)", timeout_seconds,
               [&] { check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup"); });
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    // Timeout reports name ranks as the job knows them (world ranks), not as this group does.
    world_ranks_ = world_ranks_of(comm_);
    worker_ = std::make_shared<WorkerState>();
    thread_ = std::thread([w = worker_] { work_loop(w); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(worker_->mu);
      worker_->stop = true;
    }
    worker_->cv.notify_all();
    if (worker_->timed_out) {
      // The worker may be blocked in MPI for good; joining it would hang this rank, and freeing
      // the communicator under it is undefined. The job is ending: leave both.
      thread_.detach();
      return;
    }
    thread_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Backend backend() const override { return Backend::kMpi; }

  std::unique_ptr<Work> all_reduce_async(torch::Tensor t) override {
    require_cpu_contiguous(t, "all_reduce");
    const auto type = mpi_type(t);
    const int count = static_cast<int>(t.numel());
    // bound: the caller's Work::wait (cluster.timeout_seconds, then the job ends, named).
    return submit("all-reduce of " + std::to_string(t.numel()) + " values", [this, t, type, count] {
      check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), count, type, MPI_SUM, comm_),
            "MPI_Allreduce");
    });
  }

  void broadcast(torch::Tensor t, int root) override {
    require_cpu_contiguous(t, "broadcast");
    const auto type = mpi_type(t);
    const int count = static_cast<int>(t.numel());
    // bound: MpiWork::wait's deadline (cluster.timeout_seconds).
    submit("broadcast from rank " + std::to_string(root), [this, t, type, count, root] {
      check(MPI_Bcast(t.data_ptr(), count, type, root, comm_), "MPI_Bcast");
    })->wait();
  }

  void barrier() override { barrier_async()->wait(); }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }

 protected:
  void all_gather_cpu(const torch::Tensor& mine, torch::Tensor& all) override {
    // bound: MpiWork::wait's deadline (cluster.timeout_seconds).
    submit("all-gather", [this, mine, all] {
      check(MPI_Allgather(mine.data_ptr(), static_cast<int>(mine.numel()), mpi_type(mine),
                          all.data_ptr(), static_cast<int>(mine.numel()), mpi_type(all), comm_),
            "MPI_Allgather");
    })->wait();
  }
  std::unique_ptr<Work> barrier_async() override {
    // bound: the caller's wait (MpiWork's deadline, or barrier_while_alive's liveness probes).
    return submit("barrier", [this] { check(MPI_Barrier(comm_), "MPI_Barrier"); });
  }
  double timeout_seconds() const override { return timeout_; }

 private:
  std::unique_ptr<Work> submit(const std::string& op, std::function<void()> fn) {
    auto task = std::make_shared<std::packaged_task<void()>>(std::move(fn));
    std::shared_future<void> f = task->get_future().share();
    {
      std::lock_guard<std::mutex> lock(worker_->mu);
      worker_->queue.push_back([task] { (*task)(); });
    }
    worker_->cv.notify_one();
    // Named by what the caller does ("bucket 2/5", "decision"), the same on every rank, so a
    // probe can tell a peer waiting in this very collective from one elsewhere.
    const Activity a = current_activity();
    std::string what = (a.what.empty() ? "" : a.what + ": ") + "MPI " + op;
    if (a.step >= 0) what += " at step " + std::to_string(a.step);
    if (!a.run.empty()) what += " of run " + a.run;
    return std::make_unique<MpiWork>(f, std::move(what), timeout_, rank_, size_, world_ranks_,
                                     worker_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double timeout_;
  std::vector<int> world_ranks_;
  std::shared_ptr<WorkerState> worker_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, double timeout_seconds) {
  return std::make_unique<MpiCommunicator>(comm, timeout_seconds);
}

}  // namespace agave::cluster
