#include "trainer/latent_stats.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace agave::trainer {

std::vector<int64_t> derangement(int64_t n, uint64_t seed) {
  if (n < 0) throw std::invalid_argument("derangement: n must be >= 0, got " + std::to_string(n));
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  // mt19937_64 and a plain modulo rather than a std:: distribution, whose output differs between
  // standard libraries: the pairs must be the same wherever the evaluation runs. (The modulo's
  // bias is below 1e-16 for batch-sized n.)
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i));  // j < i: Sattolo
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

int64_t active_channels(const std::vector<double>& sum, const std::vector<double>& sum_sq, double n,
                        int64_t positions, double threshold) {
  if (sum.size() != sum_sq.size() || positions < 1 ||
      sum.size() % static_cast<size_t>(positions) != 0) {
    throw std::invalid_argument("active_channels: " + std::to_string(sum.size()) + " sums and " +
                                std::to_string(sum_sq.size()) +
                                " sums of squares are not whole "
                                "channels of " +
                                std::to_string(positions) + " positions");
  }
  if (n <= 0) return 0;
  int64_t active = 0;
  for (size_t c = 0; c < sum.size(); c += static_cast<size_t>(positions)) {
    double covariance = 0;
    for (size_t u = c; u < c + static_cast<size_t>(positions); ++u) {
      const double mean = sum[u] / n;
      covariance += std::max(0.0, sum_sq[u] / n - mean * mean);
    }
    if (covariance / static_cast<double>(positions) > threshold) ++active;
  }
  return active;
}

}  // namespace agave::trainer
