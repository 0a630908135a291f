#pragma once
// A comparison of arms (configs, or the points of a sweep) each run with several seeds and
// evaluated image by image on the same test images: per arm and seed the mean of every column;
// per pair of arms and seed the mean paired difference with its paired standard error; across
// seeds the mean of those differences, its standard error across seeds, the spread and how many
// seeds agree in sign. Seed i of one arm is paired with seed i of every other.
#include <string>
#include <vector>

#include "analysis/paired_stats.h"
#include "analysis/per_image_file.h"
#include "io/errors.h"

namespace agave::analysis {

// Two files that cannot be paired (other images, another K, other weights), or arms that
// cannot be compared: the user's to fix (exit code 2), one line naming the files.
class PairingError : public io::BadDataError {
 public:
  explicit PairingError(const std::string& problem) : io::BadDataError("", problem) {}
};

struct Arm {
  std::string name;
  std::vector<PerImageFile> seeds;  // one per seed, in seed order
};

// Which files may be paired: those of one K (the comparison of configs), or, to show how the IW
// bound converges in K on one checkpoint, arms each of its own K (within an arm one K).
enum class KPairing { kSameK, kAcrossArms };

// Throws PairingError naming both files unless `b` holds the same images in the same order as
// `a`, under the same weights (and the same K unless kAcrossArms), with every column of
// `columns`.
void check_pairable(const PerImageFile& a, const PerImageFile& b,
                    const std::vector<std::string>& columns, KPairing k = KPairing::kSameK);

// The columns every file of every arm has, in the first file's order.
std::vector<std::string> shared_columns(const std::vector<Arm>& arms);

struct ArmSeedMeans {
  size_t arm = 0, seed = 0;
  std::vector<MeanError> columns;  // per column
};

// Arm `b` − arm `a` in one column.
struct PairedColumn {
  size_t a = 0, b = 0;
  std::string column;
  std::vector<MeanError> per_seed;
  SeedSpread seeds;  // of per_seed's means
};

struct Comparison {
  std::vector<Arm> arms;
  std::vector<std::string> columns;
  std::vector<ArmSeedMeans> means;     // per arm, per seed
  std::vector<SeedSpread> arm_spread;  // per arm × column (arm-major): the seeds' means
  std::vector<PairedColumn> pairs;     // every pair a < b of arms, every column
  const SeedSpread& spread(size_t arm, size_t column) const {
    return arm_spread[arm * columns.size() + column];
  }
};

// Compares `arms` (at least two, each with the same number of seeds, every file pairable with
// the first arm's first) in `columns` (empty: every shared column). Throws PairingError.
Comparison compare(std::vector<Arm> arms, std::vector<std::string> columns = {},
                   KPairing k = KPairing::kSameK);

}  // namespace agave::analysis
