#pragma once
// The per-image file `agave_eval --per-image` writes and `agave_compare` reads: one row per
// evaluated test image (its index in the test split, then one number per column), and above
// them what the numbers depend on, so two files are paired only when they are the same images
// under the same bound (docs/evaluation.md, "Per-image files"). Generic over the columns: the
// writer names them.
//
//   # agave per-image v1
//   # checkpoint=runs/tiny/checkpoints/step-00000010
//   # step=10
//   # seed=1
//   # weights=ema
//   # importance_samples=8
//   # test_split=10000
//   index,elbo_bpd,iw_bpd,...
//   0,3.41234567,3.40123456,...
#include <cstdint>
#include <string>
#include <vector>

#include "io/errors.h"

namespace agave::analysis {

inline constexpr const char* kPerImageFormat = "agave per-image v1";

// What a file's numbers depend on. The images are its rows' indices.
struct PerImageMeta {
  std::string checkpoint;          // the checkpoint folder evaluated
  int64_t step = 0;                // its training step
  uint64_t seed = 0;               // the run's run.seed
  std::string weights;             // "ema" or "live"
  int64_t importance_samples = 0;  // K of the IW bound
  int64_t test_split = 0;          // images in the whole test split
};

struct PerImageFile {
  std::string path;  // where it was read from (or is written to), for messages
  PerImageMeta meta;
  std::vector<std::string> columns;         // after "index"
  std::vector<int64_t> index;               // per row: the image's index in the test split
  std::vector<std::vector<double>> values;  // per column, one per row; NaN: the image has none

  size_t rows() const { return index.size(); }
  // The values of `column`; throws io::BadDataError naming the file when it has no such column.
  const std::vector<double>& column(const std::string& name) const;
};

// The file's text (NaN written "nan"; 9 significant digits, finer than any difference reported).
std::string to_text(const PerImageFile& f);

// Parses `text`, read from `path`; a malformed file is an io::BadDataError naming the path and
// line.
PerImageFile parse_per_image(const std::string& path, const std::string& text);
PerImageFile read_per_image(const std::string& path);

}  // namespace agave::analysis
