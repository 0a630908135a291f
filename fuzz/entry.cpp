// libFuzzer's entry point for one target, chosen at compile time (AGAVE_FUZZ_TARGET).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return agave::fuzz::AGAVE_FUZZ_TARGET(data, size);
}
