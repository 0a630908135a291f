// reuse_freed_tensor_memory: a step's worth of freed blocks comes back without page faults.
#include "launcher/host_allocator.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace agave::launcher {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Page faults of the second of two "steps", each allocating, touching and freeing six 8 MiB
// blocks (activations of a small CIFAR batch), in a fresh child process so that nothing this
// test binary did before shapes its heap.
long faults_of_second_step(bool reuse) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    if (reuse) reuse_freed_tensor_memory();
    long faults = 0;
    for (int step = 0; step < 2; ++step) {
      const long before = minor_faults();
      std::vector<void*> blocks;
      for (int i = 0; i < 6; ++i) {
        blocks.push_back(std::malloc(8 << 20));
        std::memset(blocks.back(), step + 1, 8 << 20);
      }
      for (void* b : blocks) std::free(b);
      faults = minor_faults() - before;
    }
    const ssize_t n = write(fds[1], &faults, sizeof faults);
    _exit(n == sizeof faults ? 0 : 1);
  }
  close(fds[1]);
  long faults = -1;
  if (read(fds[0], &faults, sizeof faults) != sizeof faults) faults = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return faults;
}

TEST(HostAllocator, ASecondStepReusesTheFirstStepsPages) {
  // 48 MiB touched = 12,288 pages: glibc's defaults trim the freed heap and fault them all in
  // again; kept for reuse, the second step faults on almost none.
  const long kept = faults_of_second_step(true);
  const long fresh = faults_of_second_step(false);
  ASSERT_GE(kept, 0);
  ASSERT_GE(fresh, 0);
  EXPECT_LT(kept, 500) << "default malloc faulted " << fresh;
  EXPECT_GT(fresh, 5000) << "the test no longer shows what the setting is for";
}

TEST(HostAllocator, LeavesMallocAloneWhenTheUserTunedIt) {
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000", 1), 0);
  EXPECT_EQ(reuse_freed_tensor_memory(), "malloc as the environment tunes it");
  unsetenv("GLIBC_TUNABLES");
}

}  // namespace
}  // namespace agave::launcher
