#pragma once
// One run, one job: an exclusive flock on <run folder>/.agave.lock for the run's lifetime, so a
// second job (a requeue racing the original, a copied command) cannot train, prune or overwrite
// the same run. The kernel drops the lock when the holder exits, however it ends.
#include <stdexcept>
#include <string>

namespace agave::launcher {

// Another process holds the run; the message names its host and pid.
class RunLockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RunLock {
 public:
  // Creates `dir` when missing, locks it without waiting and records "<host> pid <pid>" in the
  // lock file. Throws RunLockError when another process holds it, std::runtime_error when the
  // file cannot be created.
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace agave::launcher
