#include "analysis/comparison.h"

#include <algorithm>

namespace agave::analysis {

namespace {

std::string both(const PerImageFile& a, const PerImageFile& b) {
  return "cannot pair " + a.path + " and " + b.path + ": ";
}

// The first row at which the two files' images differ (rows() when none does).
size_t first_other_image(const PerImageFile& a, const PerImageFile& b) {
  const size_t n = std::min(a.rows(), b.rows());
  for (size_t r = 0; r < n; ++r) {
    if (a.index[r] != b.index[r]) return r;
  }
  return n;
}

}  // namespace

void check_pairable(const PerImageFile& a, const PerImageFile& b,
                    const std::vector<std::string>& columns, KPairing k) {
  if (a.rows() != b.rows()) {
    throw PairingError(both(a, b) + std::to_string(a.rows()) + " and " + std::to_string(b.rows()) +
                       " test images (another test subset)");
  }
  if (const size_t r = first_other_image(a, b); r < a.rows()) {
    throw PairingError(both(a, b) + "row " + std::to_string(r + 1) + " is test image " +
                       std::to_string(a.index[r]) + " in one, " + std::to_string(b.index[r]) +
                       " in the other (other test images)");
  }
  if (a.meta.test_split != b.meta.test_split) {
    throw PairingError(both(a, b) + "test splits of " + std::to_string(a.meta.test_split) +
                       " and " + std::to_string(b.meta.test_split) + " images (other data)");
  }
  if (k == KPairing::kSameK && a.meta.importance_samples != b.meta.importance_samples) {
    throw PairingError(both(a, b) +
                       "IW bounds with K = " + std::to_string(a.meta.importance_samples) +
                       " and K = " + std::to_string(b.meta.importance_samples));
  }
  if (a.meta.weights != b.meta.weights) {
    throw PairingError(both(a, b) + a.meta.weights + " and " + b.meta.weights + " weights");
  }
  for (const auto& c : columns) {
    for (const auto* f : {&a, &b}) {
      if (std::find(f->columns.begin(), f->columns.end(), c) == f->columns.end()) {
        throw PairingError(both(a, b) + f->path + " has no column " + c);
      }
    }
  }
}

std::vector<std::string> shared_columns(const std::vector<Arm>& arms) {
  std::vector<std::string> out;
  if (arms.empty() || arms[0].seeds.empty()) return out;
  for (const auto& c : arms[0].seeds[0].columns) {
    bool everywhere = true;
    for (const auto& arm : arms) {
      for (const auto& f : arm.seeds) {
        everywhere =
            everywhere && std::find(f.columns.begin(), f.columns.end(), c) != f.columns.end();
      }
    }
    if (everywhere) out.push_back(c);
  }
  return out;
}

namespace {

void check_arms(const std::vector<Arm>& arms, const std::vector<std::string>& columns, KPairing k) {
  if (arms.size() < 2) throw PairingError("a comparison needs two arms or more");
  const size_t seeds = arms[0].seeds.size();
  for (const auto& arm : arms) {
    if (arm.seeds.empty()) throw PairingError("arm " + arm.name + " has no files");
    if (arm.seeds.size() != seeds) {
      throw PairingError("arm " + arms[0].name + " has " + std::to_string(seeds) +
                         " seed(s), arm " + arm.name + " " + std::to_string(arm.seeds.size()) +
                         ": seed i of one arm is paired with seed i of the other");
    }
    for (const auto& f : arm.seeds) {
      check_pairable(arms[0].seeds[0], f, columns, k);
      check_pairable(arm.seeds[0], f, columns);  // one K within an arm
    }
  }
}

PairedColumn paired(const std::vector<Arm>& arms, size_t a, size_t b, const std::string& column) {
  PairedColumn p{a, b, column, {}, {}};
  std::vector<double> means;
  for (size_t s = 0; s < arms[a].seeds.size(); ++s) {
    p.per_seed.push_back(
        paired_difference(arms[a].seeds[s].column(column), arms[b].seeds[s].column(column)));
    means.push_back(p.per_seed.back().mean);
  }
  p.seeds = across_seeds(means);
  return p;
}

}  // namespace

Comparison compare(std::vector<Arm> arms, std::vector<std::string> columns, KPairing k) {
  if (columns.empty()) columns = shared_columns(arms);
  check_arms(arms, columns, k);
  Comparison c;
  c.columns = columns;
  for (size_t a = 0; a < arms.size(); ++a) {
    std::vector<std::vector<double>> seed_means(columns.size());
    for (size_t s = 0; s < arms[a].seeds.size(); ++s) {
      ArmSeedMeans m{a, s, {}};
      for (size_t k = 0; k < columns.size(); ++k) {
        m.columns.push_back(mean_error(arms[a].seeds[s].column(columns[k])));
        seed_means[k].push_back(m.columns.back().mean);
      }
      c.means.push_back(m);
    }
    for (const auto& v : seed_means) c.arm_spread.push_back(across_seeds(v));
  }
  for (size_t a = 0; a < arms.size(); ++a) {
    for (size_t b = a + 1; b < arms.size(); ++b) {
      for (const auto& column : columns) c.pairs.push_back(paired(arms, a, b, column));
    }
  }
  c.arms = std::move(arms);
  return c;
}

}  // namespace agave::analysis
