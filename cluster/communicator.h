#pragma once
// Collectives over the ranks of one run. Tensor collectives are in-place sums (the caller
// divides), issued in the same order on every rank. Every wait has a deadline, so a dead or
// stuck peer fails the job with a named error instead of hanging it.
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/options.h"

namespace agave::cluster {

// A collective that did not finish in time: a peer died, hangs, or never reached it.
class CollectiveTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a missed deadline does. Without a handler the wait throws CollectiveTimeout (library
// use, tests). agave_trainer installs one that prints the line and aborts the MPI job at once:
// unwinding would join threads still blocked in MPI and never reach an abort.
using TimeoutHandler = void (*)(const std::string& line);
void set_timeout_handler(TimeoutHandler handler);
// Calls the handler (which must not return) or throws CollectiveTimeout(line).
[[noreturn]] void collective_timed_out(const std::string& line);

// A collective in flight.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until done; throws CollectiveTimeout after the communicator's timeout.
  virtual void wait() = 0;
  // True once done (never blocks).
  virtual bool done() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Backend backend() const = 0;

  // Starts an in-place sum over all ranks of a contiguous tensor.
  virtual std::unique_ptr<Work> all_reduce_async(torch::Tensor tensor) = 0;
  void all_reduce(torch::Tensor tensor) { all_reduce_async(std::move(tensor))->wait(); }
  // Copies `root`'s tensor into every rank's (same shape and dtype everywhere).
  virtual void broadcast(torch::Tensor tensor, int root) = 0;
  virtual void barrier() = 0;
  // A barrier after work that only some ranks do (rank 0 draws the pictures, converts the data,
  // writes the sweep table): waits as long as the ranks that have not arrived answer liveness
  // probes, and ends the job naming any that does not (JobChannel's wait_while_alive). A plain
  // barrier there would end a healthy job whose rank 0 is merely slower than the timeout.
  void barrier_while_alive(const std::string& what);
  // The MPI_COMM_WORLD rank of each rank, in this communicator's order.
  virtual const std::vector<int>& world_ranks() const = 0;

  // Host-side helpers for decisions every rank must take alike.
  std::vector<double> all_reduce_sum(std::vector<double> values);
  double all_reduce_max(double value);
  std::vector<double> all_gather(double value);
  // Every rank's string (checksums, paths), in rank order, on every rank.
  std::vector<std::string> all_gather_string(const std::string& value);

 protected:
  // Backends implement the host helpers on CPU double tensors through their own collectives.
  virtual void all_gather_cpu(const torch::Tensor& mine, torch::Tensor& all) = 0;
  // A barrier in flight; its wait() is never called by barrier_while_alive, only done().
  virtual std::unique_ptr<Work> barrier_async() = 0;
  // The deadline of this communicator's collectives.
  virtual double timeout_seconds() const = 0;
};

// MPI communicator over an MPI_Comm (CPU tensors). All MPI calls of this communicator run on
// one worker thread in submission order, so collectives overlap with the caller's compute
// (backward) and MPI sees one thread per communicator.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, double timeout_seconds);

// The MPI_COMM_WORLD rank of each rank of `comm`, in `comm`'s order: errors name ranks as the
// job knows them, not as a sweep group does.
std::vector<int> world_ranks_of(MPI_Comm comm);

#if defined(AGAVE_WITH_NCCL)
// NCCL communicator for CUDA tensors on `device`; the unique id is broadcast over `mpi_comm`.
// Collectives run on a side stream ordered after the current stream with CUDA events.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device,
                                                     double timeout_seconds);
#endif

}  // namespace agave::cluster
