#include "launcher/host_allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <limits>

extern char** environ;  // NOLINT: POSIX

namespace agave::launcher {
namespace {

bool user_tuned_malloc() {
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::strstr(t, "glibc.malloc")) {
    return true;
  }
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "MALLOC_", 7) == 0 && std::strstr(*e, "_=")) return true;
  }
  return false;
}

}  // namespace

std::string reuse_freed_tensor_memory() {
  if (user_tuned_malloc()) return "malloc as the environment tunes it";
  constexpr int kMmapThreshold = 32 << 20;  // glibc refuses more (HEAP_MAX_SIZE / 2)
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
  return ok ? "freed memory kept for reuse (malloc: mmap threshold 32 MiB, no trim)"
            : "malloc refused the reuse settings; default glibc malloc";
}

}  // namespace agave::launcher
