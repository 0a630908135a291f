#pragma once
// Per-image files made by hand for the analysis tests.
#include <string>
#include <vector>

#include "analysis/per_image_file.h"

namespace agave::analysis::testing {

// A file of `path` over test images `index` with one column per entry of `columns`, K = 8,
// EMA weights, a test split of 100 images.
inline PerImageFile file(const std::string& path, std::vector<int64_t> index,
                         std::vector<std::string> columns, std::vector<std::vector<double>> values,
                         uint64_t seed = 1) {
  PerImageFile f;
  f.path = path;
  f.meta = {"runs/x/checkpoints/step-00000010", 10, seed, "ema", 8, 100};
  f.index = std::move(index);
  f.columns = std::move(columns);
  f.values = std::move(values);
  return f;
}

}  // namespace agave::analysis::testing
