#pragma once
// Data-parallel gradient averaging in the style of PyTorch DDP: gradients are packed into
// flat buckets (the first small, so communication starts early), and each bucket's all-reduce
// starts from an autograd hook as soon as all of its gradients exist, while backward is still
// computing the rest. Buckets launch strictly in index order, so every rank issues the same
// collectives in the same order.
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cluster/communicator.h"

namespace agave::cluster {

struct BucketerOptions {
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  // Start each bucket's all-reduce from the autograd hooks as soon as it is full (true), or
  // all of them after backward (false: the baseline that shows what overlapping saves).
  bool overlap = true;
};

class GradientBucketer {
 public:
  // `params` are the parameters that train (requires_grad); they must be the same, in the same
  // order, on every rank. Buckets fill in reverse order, as backward produces gradients.
  GradientBucketer(std::vector<torch::Tensor> params, Communicator& comm, BucketerOptions options);
  ~GradientBucketer();
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // Before backward: clears the gradients (they are rebuilt from the buckets) and readiness.
  void prepare();
  // After backward: launches buckets whose parameters got no gradient (they count as zeros),
  // waits for all, and sets every parameter's grad to the average over ranks.
  // Returns the seconds spent waiting here (communication not hidden behind backward).
  double finish();

  size_t bucket_count() const { return buckets_.size(); }
  std::vector<int64_t> bucket_numels() const;
  // Buckets whose all-reduce started inside backward during the last step.
  int64_t launched_during_backward() const { return launched_in_hooks_; }

 private:
  struct Bucket {
    torch::Tensor flat;          // fp32/native dtype, on the parameters' device
    std::vector<size_t> params;  // indices into params_
    std::vector<int64_t> offsets;
    size_t pending = 0;
    bool launched = false;
    std::unique_ptr<Work> work;
  };

  void on_grad(size_t param, const torch::Tensor& grad);
  void launch_ready_in_order(bool from_hook);

  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;  // param -> bucket
  std::vector<int64_t> offset_of_;
  std::vector<bool> got_grad_;
  std::vector<Bucket> buckets_;
  std::vector<unsigned> hook_ids_;
  Communicator& comm_;
  std::mutex mu_;
  size_t next_launch_ = 0;
  int64_t launched_in_hooks_ = 0;
  bool overlap_ = true;
};

// Copies rank `root`'s parameters and buffers into every rank's, so all ranks start identical
// (after random init and after data-dependent init).
void broadcast_module_state(torch::nn::Module& module, Communicator& comm, int root = 0);

}  // namespace agave::cluster
