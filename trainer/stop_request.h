#pragma once
// A stop request (SIGTERM, SIGUSR1, a fault hook): set from a signal handler or any thread; the
// ranks agree on it in the next step's decision all-reduce, checkpoint and stop together.
#include <atomic>

namespace agave::trainer {

inline std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

}  // namespace agave::trainer
