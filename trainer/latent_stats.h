#pragma once
// The arithmetic of the latent-use numbers an evaluation reports (issue 33), apart from the
// evaluation loop so it can be checked on numbers chosen by hand: which image lends its z to
// which, and Burda et al.'s count of active latent channels.
#include <cstdint>
#include <vector>

namespace agave::trainer {

// Burda et al. (2016, "Importance Weighted Autoencoders", §5.2): a latent unit u is active when
// Cov_x(E_q(u|x)[u]) > 0.01.
inline constexpr double kActiveUnitThreshold = 0.01;

// A uniformly random cyclic permutation of 0 … n−1 (Sattolo's algorithm), the same for the same
// (n, seed): image i of a batch is scored with the z of image partner[i]. A single n-cycle has
// no fixed point for n ≥ 2, so no image keeps its own z (n = 1 gives {0}: there is no other).
// Random rather than a roll by one, which would pair neighbours of a test split stored in order.
std::vector<int64_t> derangement(int64_t n, uint64_t seed);

// The active latent channels. A unit here is a channel of a latent layer (the layers' channels
// in order, channel-major: `positions` = R·R consecutive entries per channel), not a scalar: the
// latent maps are convolutional, so a channel is what the architecture has one of (its weights are
// shared over positions, free bits act per channel), and a count of scalars would mostly measure
// the map's size. A channel's activity is Burda et al.'s Cov_x(E_q[z]) of each of its positions,
// averaged over the positions; averaging the covariances rather than taking the covariance of
// the spatial average keeps a channel that codes where something is (a mean over the map nearly
// constant across images) from reading as inactive. `sum` and `sum_sq` are the sums over `n`
// images of E_q(z|x)[z] and of its square, per scalar unit; the covariance divides by n.
int64_t active_channels(const std::vector<double>& sum, const std::vector<double>& sum_sq, double n,
                        int64_t positions, double threshold = kActiveUnitThreshold);

}  // namespace agave::trainer
