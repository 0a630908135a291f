#pragma once
// The MPI process environment of one job: init/finalize, world and node-local ranks, Slurm's
// view when launched by srun, and communicators split from the world.
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/options.h"

namespace agave::cluster {

// An owned or borrowed MPI communicator with the few host-side collectives the launcher needs
// (tensor collectives live in Communicator). Each waits at most `timeout_seconds`
// (bounded_call.h): past that the job ends, naming the collective.
class MpiGroup {
 public:
  MpiGroup(MPI_Comm comm, bool owned, double timeout_seconds = ClusterOptions{}.timeout_seconds);
  ~MpiGroup();
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm comm() const { return comm_; }

  void barrier() const;
  // Every rank's string, in rank order, on `root` (empty elsewhere).
  std::vector<std::string> gather(const std::string& mine, int root = 0) const;
  // All ranks' int64 values, in rank order, on every rank.
  std::vector<int64_t> all_gather(int64_t mine) const;
  // Splits this group: ranks with the same color form a new group, ordered by key.
  std::unique_ptr<MpiGroup> split(int color, int key) const;

 private:
  MPI_Comm comm_;
  bool owned_;
  double timeout_seconds_;
  std::vector<int> world_ranks_;
  int rank_ = 0;
  int size_ = 1;
};

// Where this process runs, as the launcher (mpirun or srun) described it.
struct ProcessPlacement {
  int world_rank = 0;
  int world_size = 1;
  int local_rank = 0;  // rank among the processes on this node
  int local_size = 1;
  std::string hostname;
  bool under_slurm = false;
  std::string slurm_job_id;  // empty outside Slurm
};

// Initialises MPI on construction and finalises it on destruction; one per process. Every wait
// on other ranks it makes (the node split, MPI_Finalize, the groups' collectives) is bounded by
// `timeout_seconds` (cluster.timeout_seconds).
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv, double timeout_seconds = ClusterOptions{}.timeout_seconds);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  const ProcessPlacement& placement() const { return placement_; }
  const MpiGroup& world() const { return *world_; }
  // Ends the whole job with `code`: used when one rank must not leave others waiting.
  [[noreturn]] void abort(int code) const;
  // The MPI thread level granted (MPI_THREAD_*).
  int thread_level() const { return thread_level_; }

 private:
  void finalize_within_deadline();

  std::unique_ptr<MpiGroup> world_;
  ProcessPlacement placement_;
  int thread_level_ = MPI_THREAD_SINGLE;
  bool finalize_ = false;
  double timeout_seconds_;
};

// Reads Slurm's SLURM_* variables; fields stay empty/zero when not under Slurm.
ProcessPlacement placement_from_slurm_env();

}  // namespace agave::cluster
