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

// When gradient buckets are all-reduced: during backward (kOn), all after it (kOff), or kAuto:
// during backward with NCCL (its own stream); after it with MPI on CPUs, where the MPI progress
// thread would take cores from backward (measured: docs/performance.md).
enum class Overlap { kAuto, kOn, kOff };

inline const char* overlap_name(Overlap o) {
  switch (o) {
    case Overlap::kOn:
      return "true";
    case Overlap::kOff:
      return "false";
    default:
      return "auto";
  }
}

// Whether buckets overlap backward on a communicator of `backend`.
inline bool overlaps_backward(Overlap o, Backend backend) {
  return o == Overlap::kOn || (o == Overlap::kAuto && backend == Backend::kNccl);
}

struct ClusterOptions {
  Backend backend = Backend::kAuto;  // auto: NCCL for CUDA tensors, MPI otherwise
  // LibTorch intra-op threads per rank; 0 = the node's cores divided by its local ranks.
  int64_t threads_per_rank = 0;
  double timeout_seconds = 300.0;  // a collective that waits longer fails the job
  double bucket_mb = 25.0;         // gradient bucket size for the all-reduce
  Overlap overlap = Overlap::kAuto;
};

}  // namespace agave::cluster
