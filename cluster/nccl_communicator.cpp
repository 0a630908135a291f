// NCCL backend: built only with a CUDA LibTorch and NCCL (AGAVE_WITH_NCCL).
#if defined(AGAVE_WITH_NCCL)
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "cluster/activity.h"
#include "cluster/bounded_call.h"
#include "cluster/communicator.h"
#include "cluster/job_channel.h"

namespace agave::cluster {
namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + ncclGetErrorString(rc));
  }
}

ncclDataType_t nccl_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kHalf:
      return ncclFloat16;
    case torch::kInt32:
      return ncclInt32;
    case torch::kInt64:
      return ncclInt64;
    case torch::kUInt8:
      return ncclUint8;
    default:
      throw std::invalid_argument("NCCL collectives: unsupported dtype");
  }
}

// A collective on the side stream: done when its event has fired. The caller's stream waits
// on the event (no host sync); wait() only blocks the host when asked to, with a deadline.
class NcclWork : public Work {
 public:
  // `aborted` is the communicator's: a work that aborts the NCCL communicator says so, and the
  // communicator then must not destroy it a second time.
  NcclWork(std::shared_ptr<at::cuda::CUDAEvent> event, ncclComm_t comm, double timeout,
           std::shared_ptr<std::atomic<bool>> aborted, std::string what, int rank, int size,
           std::vector<int> peers)
      : event_(std::move(event)),
        comm_(comm),
        timeout_(std::min(timeout, 1e7)),
        aborted_(std::move(aborted)),
        what_(std::move(what)),
        rank_(rank),
        size_(size),
        peers_(std::move(peers)) {}
  void wait() override {
    // Order the caller's current stream after the collective: the usual, sync-free wait.
    event_->block(c10::cuda::getCurrentCUDAStream());
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    WaitingScope waiting(what_);
    while (!event_->query()) {
      ncclResult_t async_err = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async_err);
      if (async_err != ncclSuccess) {
        abort_once();
        throw std::runtime_error(std::string("NCCL all-reduce failed: ") +
                                 ncclGetErrorString(async_err));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        abort_once();
        collective_timed_out(stall_report(what_, timeout_, rank_, size_, peers_));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  bool done() override { return event_->query(); }

 private:
  void abort_once() {
    if (!aborted_->exchange(true)) ncclCommAbort(comm_);
  }

  std::shared_ptr<at::cuda::CUDAEvent> event_;
  ncclComm_t comm_;
  double timeout_;
  std::shared_ptr<std::atomic<bool>> aborted_;
  std::string what_;
  int rank_, size_;
  std::vector<int> peers_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, int device, double timeout)
      : device_(device),
        timeout_(timeout),
        side_stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device)) {
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
    world_ranks_ = world_ranks_of(comm);
    ncclUniqueId id;
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    // bound: cluster.timeout_seconds (run_within) for the id's broadcast and NCCL's rendezvous;
    // a rank that never comes would otherwise hold the others here for good.
    run_within(
        "NCCL set-up (unique id broadcast)", timeout,
        [&] { MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm); }, world_ranks_);
    run_within(
        "NCCL set-up (ncclCommInitRank)", timeout,
        [&] {
          c10::cuda::CUDAGuard guard(device_);
          // bound: cluster.timeout_seconds (the run_within around it).
          check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
        },
        world_ranks_);
  }
  ~NcclCommunicator() override {
    if (!aborted_->load()) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Backend backend() const override { return Backend::kNccl; }

  std::unique_ptr<Work> all_reduce_async(torch::Tensor t) override {
    if (!t.is_cuda() || !t.is_contiguous()) {
      throw std::invalid_argument("NCCL all_reduce: needs a contiguous CUDA tensor");
    }
    return launch(t, [&](cudaStream_t s) {
      check_nccl(
          ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), ncclSum, comm_, s),
          "ncclAllReduce");
    });
  }

  void broadcast(torch::Tensor t, int root) override {
    launch(t, [&](cudaStream_t s) {
      check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), root, comm_, s),
                 "ncclBroadcast");
    })->wait();
  }

  void barrier() override {
    auto one = torch::ones({1}, torch::TensorOptions().device(torch::kCUDA, device_));
    all_reduce(one);
    one.item<float>();  // a barrier must block the host
  }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }

 protected:
  void all_gather_cpu(const torch::Tensor& mine, torch::Tensor& all) override {
    auto dev = mine.to(torch::Device(torch::kCUDA, device_));
    auto out = torch::empty({all.numel()}, dev.options());
    launch(dev, [&](cudaStream_t s) {
      check_nccl(
          ncclAllGather(dev.data_ptr(), out.data_ptr(), dev.numel(), nccl_type(dev), comm_, s),
          "ncclAllGather");
    })->wait();
    all.copy_(out.cpu());
  }
  std::unique_ptr<Work> barrier_async() override {
    // done() polls the CUDA event: the host never blocks on a peer that does not come.
    return all_reduce_async(torch::ones({1}, torch::TensorOptions().device(torch::kCUDA, device_)));
  }
  double timeout_seconds() const override { return timeout_; }

 private:
  template <typename F>
  std::unique_ptr<Work> launch(const torch::Tensor& t, F&& op) {
    c10::cuda::CUDAGuard guard(device_);
    auto current = c10::cuda::getCurrentCUDAStream(device_);
    // The side stream starts after everything queued so far on the compute stream (the
    // gradients it reduces), without blocking the host.
    at::cuda::CUDAEvent ready;
    ready.record(current);
    ready.block(side_stream_);
    // Keep the tensor's memory alive until the side stream is done with it.
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), side_stream_);
    op(side_stream_.stream());
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    done->record(side_stream_);
    const Activity a = current_activity();
    std::string what = (a.what.empty() ? "" : a.what + ": ") + "NCCL collective";
    if (a.step >= 0) what += " at step " + std::to_string(a.step);
    if (!a.run.empty()) what += " of run " + a.run;
    return std::make_unique<NcclWork>(done, comm_, timeout_, aborted_, std::move(what), rank_,
                                      size_, world_ranks_);
  }

  int device_;
  double timeout_;
  int rank_ = 0;
  int size_ = 1;
  ncclComm_t comm_ = nullptr;
  std::shared_ptr<std::atomic<bool>> aborted_ = std::make_shared<std::atomic<bool>>(false);
  std::vector<int> world_ranks_;
  c10::cuda::CUDAStream side_stream_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device,
                                                     double timeout_seconds) {
  return std::make_unique<NcclCommunicator>(comm, device, timeout_seconds);
}

}  // namespace agave::cluster
#endif  // AGAVE_WITH_NCCL
