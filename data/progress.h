#pragma once
// Progress of long data operations, reported through a callback: data/ draws nothing itself,
// the caller (launcher, trainer) decides how to show it.
#include <cstdint>
#include <functional>
#include <string>

namespace agave::data {

struct Progress {
  std::string stage;  // e.g. "convert train", "verify train-00000-of-00005.h5"
  int64_t done = 0;
  int64_t total = 0;  // images (or bytes) in this stage
};

using ProgressFn = std::function<void(const Progress&)>;

}  // namespace agave::data
