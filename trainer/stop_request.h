#pragma once
// A stop request (SIGTERM, SIGUSR1, a fault hook): set from a signal handler or any thread; the
// ranks agree on it in the next step's decision all-reduce, checkpoint and stop together.
#include <atomic>

#include "cluster/activity.h"
#include "cluster/communicator.h"

namespace agave::trainer {

inline std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

// True on every rank of `comm` when any of them has a stop request: for the points outside a
// training step where a stop is honoured (before training, before the final evaluation, between
// the runs of a sweep). Collective.
inline bool agree_on_stop(cluster::Communicator& comm) {
  cluster::ActivityScope named("stop decision");
  return comm.all_reduce_sum({stop_requested().load() ? 1.0 : 0.0}).front() > 0;
}

}  // namespace agave::trainer
