#include <mpi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "cluster/communicator.h"

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

class MpiWork : public Work {
 public:
  MpiWork(std::shared_future<void> f, std::string what, std::chrono::duration<double> timeout)
      : future_(std::move(f)), what_(std::move(what)), timeout_(timeout) {}
  void wait() override {
    if (future_.wait_for(timeout_) != std::future_status::ready) {
      throw CollectiveTimeout(what_ + " did not complete within " +
                              std::to_string(static_cast<int>(timeout_.count())) +
                              " s: a rank of this run died or stopped responding");
    }
    future_.get();  // rethrows an MPI error from the worker
  }
  bool done() override {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

 private:
  std::shared_future<void> future_;
  std::string what_;
  std::chrono::duration<double> timeout_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, double timeout_seconds) : timeout_(timeout_seconds) {
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    worker_ = std::thread([this] { run(); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
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
    return submit("all-reduce of " + std::to_string(t.numel()) + " values", [this, t, type, count] {
      check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), count, type, MPI_SUM, comm_),
            "MPI_Allreduce");
    });
  }

  void broadcast(torch::Tensor t, int root) override {
    require_cpu_contiguous(t, "broadcast");
    const auto type = mpi_type(t);
    const int count = static_cast<int>(t.numel());
    submit("broadcast from rank " + std::to_string(root), [this, t, type, count, root] {
      check(MPI_Bcast(t.data_ptr(), count, type, root, comm_), "MPI_Bcast");
    })->wait();
  }

  void barrier() override {
    submit("barrier", [this] { check(MPI_Barrier(comm_), "MPI_Barrier"); })->wait();
  }

 protected:
  void all_gather_cpu(const torch::Tensor& mine, torch::Tensor& all) override {
    submit("all-gather", [this, mine, all] {
      check(MPI_Allgather(mine.data_ptr(), static_cast<int>(mine.numel()), mpi_type(mine),
                          all.data_ptr(), static_cast<int>(mine.numel()), mpi_type(all), comm_),
            "MPI_Allgather");
    })->wait();
  }

 private:
  std::unique_ptr<Work> submit(std::string what, std::function<void()> op) {
    auto task = std::make_shared<std::packaged_task<void()>>(std::move(op));
    std::shared_future<void> f = task->get_future().share();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return std::make_unique<MpiWork>(
        f, "MPI " + what + " (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")",
        timeout_);
  }

  void run() {
    while (true) {
      std::function<void()> op;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and nothing left
        op = std::move(queue_.front());
        queue_.pop_front();
      }
      op();
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::chrono::duration<double> timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, double timeout_seconds) {
  return std::make_unique<MpiCommunicator>(comm, timeout_seconds);
}

}  // namespace agave::cluster
