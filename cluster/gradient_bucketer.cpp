#include "cluster/gradient_bucketer.h"

#include <chrono>

#include "cluster/activity.h"

namespace agave::cluster {

GradientBucketer::GradientBucketer(std::vector<torch::Tensor> params, Communicator& comm,
                                   BucketerOptions options)
    : params_(std::move(params)), comm_(comm), overlap_(options.overlap) {
  bucket_of_.resize(params_.size());
  offset_of_.resize(params_.size());
  got_grad_.assign(params_.size(), false);
  // Reverse registration order approximates the order in which backward produces gradients.
  int64_t limit = static_cast<int64_t>(options.first_bucket_mb * 1024 * 1024);
  Bucket current;
  int64_t bytes = 0;
  auto close = [&] {
    if (current.params.empty()) return;
    buckets_.push_back(std::move(current));
    current = Bucket{};
    bytes = 0;
    limit = static_cast<int64_t>(options.bucket_mb * 1024 * 1024);
  };
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    if (!current.params.empty() &&
        (p.scalar_type() != params_[current.params.front()].scalar_type() ||
         p.device() != params_[current.params.front()].device())) {
      close();
    }
    bucket_of_[k] = buckets_.size();
    offset_of_[k] = bytes / p.element_size();
    current.params.push_back(k);
    current.offsets.push_back(offset_of_[k]);
    bytes += p.numel() * p.element_size();
    if (bytes >= limit) close();
  }
  close();
  for (auto& b : buckets_) {
    const auto& first = params_[b.params.front()];
    int64_t numel = 0;
    for (size_t k : b.params) numel += params_[k].numel();
    b.flat = torch::zeros({numel}, first.options().requires_grad(false));
  }
  if (comm_.size() > 1) {
    for (size_t k = 0; k < params_.size(); ++k) {
      hook_ids_.push_back(
          params_[k].register_hook([this, k](torch::Tensor grad) { on_grad(k, grad); }));
    }
  }
}

GradientBucketer::~GradientBucketer() {
  for (size_t k = 0; k < hook_ids_.size(); ++k) params_[k].remove_hook(hook_ids_[k]);
  // No wait for collectives still in flight: each keeps its bucket's memory alive (the MPI
  // operation holds the tensor, NCCL's stream is recorded with the allocator), and a wait here
  // would block the unwinding after a timeout on a peer that never comes.
}

std::vector<int64_t> GradientBucketer::bucket_numels() const {
  std::vector<int64_t> out;
  for (const auto& b : buckets_) out.push_back(b.flat.numel());
  return out;
}

void GradientBucketer::prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.launched = false;
    b.work.reset();
  }
  got_grad_.assign(params_.size(), false);
  next_launch_ = 0;
  launched_in_hooks_ = 0;
}

void GradientBucketer::on_grad(size_t k, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mu_);
  Bucket& b = buckets_[bucket_of_[k]];
  b.flat.narrow(0, offset_of_[k], params_[k].numel()).copy_(grad.reshape(-1));
  if (!got_grad_[k]) {
    got_grad_[k] = true;
    --b.pending;
  }
  if (overlap_) launch_ready_in_order(true);
}

void GradientBucketer::launch_ready_in_order(bool from_hook) {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    ActivityScope named("bucket " + std::to_string(next_launch_ + 1) + "/" +
                        std::to_string(buckets_.size()));
    Bucket& b = buckets_[next_launch_++];
    b.work = comm_.all_reduce_async(b.flat);
    b.launched = true;
    launched_in_hooks_ += from_hook;
  }
}

double GradientBucketer::finish() {
  const auto start = std::chrono::steady_clock::now();
  const double scale = 1.0 / comm_.size();
  if (comm_.size() == 1) {
    for (auto& p : params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    }
    return 0.0;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Parameters outside this step's graph contribute zeros; every rank has the same graph,
    // so every rank fills and launches the same buckets.
    for (size_t k = 0; k < params_.size(); ++k) {
      if (got_grad_[k]) continue;
      Bucket& b = buckets_[bucket_of_[k]];
      b.flat.narrow(0, offset_of_[k], params_[k].numel()).zero_();
      got_grad_[k] = true;
      --b.pending;
    }
    launch_ready_in_order(false);
  }
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
    b.flat.mul_(scale);
    for (size_t i = 0; i < b.params.size(); ++i) {
      auto& p = params_[b.params[i]];
      auto view = b.flat.narrow(0, b.offsets[i], p.numel()).view(p.sizes());
      // A copy keeps .grad in the parameter's memory format (channels_last weights).
      p.mutable_grad() = torch::empty_like(p).copy_(view);
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void broadcast_module_state(torch::nn::Module& module, Communicator& comm, int root) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  auto sync = [&](torch::Tensor t) {
    if (t.is_contiguous()) {
      comm.broadcast(t, root);
    } else {
      auto c = t.contiguous();
      comm.broadcast(c, root);
      t.copy_(c);
    }
  };
  for (auto& p : module.parameters()) sync(p);
  for (auto& b : module.buffers()) sync(b);
}

}  // namespace agave::cluster
