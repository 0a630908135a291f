#include "launcher/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace agave::launcher {

RunLock::RunLock(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = dir + "/.agave.lock";
  // O_NOFOLLOW: a symlink planted as the lock must not make this job truncate its target.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd_ < 0) {
    const int err = errno;
    if (err == ELOOP) {
      throw RunLockError(path +
                         ": the run lock is a symbolic link; remove it (nothing was "
                         "written through it)");
    }
    throw std::runtime_error(path + ": cannot create the run lock: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw RunLockError(path + ": the run lock is not a regular file; remove it");
  }
  int rc;
  // bound: LOCK_NB: a held lock refuses this job at once.
  while ((rc = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    const int err = errno;
    char holder[256] = {0};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) {
      throw std::runtime_error(path + ": cannot lock the run folder: " + std::strerror(err));
    }
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "unknown holder";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    throw RunLockError(dir + " is being trained by another job (" + who +
                       "); one run folder takes one job at a time");
  }
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const std::string me = std::string(host) + " pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // The lock holds all the same; only the holder's name is missing for the other job's error.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace agave::launcher
