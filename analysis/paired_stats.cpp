#include "analysis/paired_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace agave::analysis {

MeanError mean_error(const std::vector<double>& v) {
  MeanError r;
  double sum = 0;
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    sum += x;
    ++r.n;
  }
  if (r.n == 0) {
    r.mean = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  r.mean = sum / static_cast<double>(r.n);
  if (r.n < 2) return r;
  // Two passes: the squares of deviations, not of the values (bits/dim near 3 with differences
  // near 0.01 would lose digits in sum2/n − mean²).
  double squares = 0;
  for (double x : v) {
    if (std::isfinite(x)) squares += (x - r.mean) * (x - r.mean);
  }
  const double n = static_cast<double>(r.n);
  r.stderr_of_mean = std::sqrt(squares / (n - 1) / n);
  return r;
}

MeanError paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("paired_difference: " + std::to_string(a.size()) + " and " +
                                std::to_string(b.size()) + " values are not pairs");
  }
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];  // NaN when either is
  return mean_error(d);
}

SeedSpread across_seeds(const std::vector<double>& per_seed) {
  SeedSpread s;
  s.across = mean_error(per_seed);
  if (s.across.n == 0) {
    s.min = s.max = s.across.mean;
    return s;
  }
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  for (double d : per_seed) {
    if (!std::isfinite(d)) continue;
    s.min = std::min(s.min, d);
    s.max = std::max(s.max, d);
    if ((d > 0 && s.across.mean > 0) || (d < 0 && s.across.mean < 0)) ++s.agreeing;
  }
  return s;
}

}  // namespace agave::analysis
