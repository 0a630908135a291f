#pragma once
// Typed options of the cluster layer (YAML section `cluster`); knows nothing of AGAVE.
#include <cstdint>
#include <string>

namespace agave::cluster {

enum class Backend { kAuto, kMpi, kNccl };

inline const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kMpi:
      return "mpi";
    case Backend::kNccl:
      return "nccl";
    default:
      return "auto";
  }
}

struct ClusterOptions {
  Backend backend = Backend::kAuto;  // auto: NCCL for CUDA tensors, MPI otherwise
  // LibTorch intra-op threads per rank; 0 = the node's cores divided by its local ranks.
  int64_t threads_per_rank = 0;
  double timeout_seconds = 300.0;  // a collective that waits longer fails the job
  double bucket_mb = 25.0;         // gradient bucket size for the all-reduce
  // All-reduce gradient buckets during backward ("true") or all after it ("false"). "auto":
  // during backward with NCCL (its own stream); after it with MPI on CPUs, where the MPI
  // progress thread would take cores from backward (measured: docs/performance.md).
  std::string overlap = "auto";
};

}  // namespace agave::cluster
