#pragma once
// Where the tests find CIFAR-10's binary batches. Configs default to data/cifar10 inside the
// project (what a user fetches); the tests never rely on that default but pass this folder
// explicitly (--set data.source=..., or a config's data.source), so a checkout without
// data/cifar10 still tests CIFAR-10. One mechanism, shared with experiments/run.sh: the
// environment variable AGAVE_CIFAR10 when set, else the build machines' shared copy beside the
// checkout (../shared/data/cifar10).
#include <cstdlib>
#include <string>

namespace agave::testing {

inline std::string cifar10_source() {
  if (const char* dir = std::getenv("AGAVE_CIFAR10"); dir != nullptr && *dir != '\0') return dir;
  return std::string(AGAVE_SOURCE_DIR) + "/../shared/data/cifar10";
}

}  // namespace agave::testing
