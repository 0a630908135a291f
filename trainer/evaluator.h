#pragma once
// Test-set evaluation split across the ranks of a run: the single-sample ELBO and the
// importance-weighted bound on ln p(x), both in bits/dim of x, with standard errors.
#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cluster/communicator.h"
#include "model/agave.h"
#include "trainer/options.h"

namespace agave::trainer {

// Which weights an evaluation used: a number is meaningless without it (issue 15).
enum class EvalWeights { kLive, kEma };
const char* weights_name(EvalWeights w);  // "live", "ema"

// One test image's numbers in bits/dim, for comparing evaluations image by image (agave_eval
// --per-image; analysis/per_image_file.h). NaN where the image has none: every latent number
// (and aux, vae) of pixelcnn_only, the shuffled and latent-use terms of an image no other image
// lent a z (see EvalResult).
struct ImageScores {
  int64_t index = 0;  // in the test split
  double elbo_bpd = 0, iw_bpd = 0, pixel_bpd = 0, pixel_shuffled_bpd = 0, latent_use_bpd = 0;
  double kl_bpd = 0, aux_bpd = 0, vae_bpd = 0;
};

struct EvalResult {
  int64_t images = 0;   // images evaluated, all ranks
  double elbo_bpd = 0;  // −ELBO (pixel + KL) in bits/dim
  double elbo_bpd_stderr = 0;
  double kl_bpd = 0;
  // −ln p(y|z) of the VAE decoder and the VAE-decoder bound −ln p(y|z) + KL, both per
  // dimension of x (a bound on −ln p(x) when y = x; the VAE alone's ELBO for vae_only). NaN
  // for pixelcnn_only, which has no latents.
  double aux_bpd = 0;
  double vae_bpd = 0;
  double vae_bpd_stderr = 0;
  double iw_bpd = 0;  // −IW bound with K samples, bits/dim
  double iw_bpd_stderr = 0;
  int64_t importance_samples = 0;
  // What the likelihood of x takes from z (issue 33), per dimension of x, from the ELBO's draw
  // z ~ q(z|x) (docs/metrics.md, "Latent use"). pixel_bpd: −ln p(x|z) with the image's own z, the
  // ELBO's x term (every kind; for pixelcnn_only, which has no z, its whole NLL).
  double pixel_bpd = 0;
  double pixel_bpd_stderr = 0;
  // The same draws paired with other images of the batch (a derangement, trainer/latent_stats.h):
  // −ln p(x|z of another image), and the difference shuffled − matched per image with its paired
  // standard error: the bits/dim the likelihood of x takes from z. Over `latent_use_images`
  // (all images unless a rank's share is a single image, which has no other to pair with). NaN
  // for pixelcnn_only.
  double pixel_shuffled_bpd = 0;
  double pixel_shuffled_bpd_stderr = 0;
  double latent_use_bpd = 0;
  double latent_use_bpd_stderr = 0;
  int64_t latent_use_images = 0;
  std::vector<double> kl_bpd_layers = {};  // KL per latent layer, bottom first; sums to kl_bpd
  // Burda et al.'s active latent channels of `latent_channels` (all layers; 0 of 0 for
  // pixelcnn_only): trainer/latent_stats.h says what a unit is and why.
  int64_t active_latent_channels = 0;
  int64_t latent_channels = 0;
  EvalWeights weights = EvalWeights::kLive;  // set by the caller, which chose them
  bool interrupted = false;  // a stop request ended it early: the numbers are not reported
  double seconds = 0;        // wall time of the evaluation (rank 0's, the ranks end together)
  // Every evaluated image's numbers in test-split order, on every rank; only when the caller
  // asked (EvalControl::per_image). Each image once: a gap or a repeat is a logic_error.
  std::vector<ImageScores> per_image = {};
};

// The result's numbers under their names, for every JSON that reports an evaluation (the
// JSONL eval event, summary.json with `prefix` "test_", agave_eval --json).
nlohmann::json to_json(const EvalResult& r, const std::string& prefix = "");

// "test ELBO 3.412 ± 0.010 bits/dim, IW(K=150) 3.401 ± 0.010, KL 0.012 (1000 images, EMA
// weights)".
std::string describe(const EvalResult& r);

// Evaluates `model` (in eval mode, no autograd) on this rank's disjoint share of the first
// `subset` images (0 = all) of the test split in `shards`; the sums are all-reduced.
EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed,
                    const torch::Device& device = torch::kCPU);

// Where an evaluation is, on every rank: once before its first batch (done 0: a rate or an ETA
// counts from there) and after each batch.
struct EvalProgressPoint {
  int64_t done = 0;   // this rank's images evaluated
  int64_t share = 0;  // this rank's images in all
  int64_t total = 0;  // the evaluation's images, all ranks
  // The images done on all ranks as this rank's pace says (they go alike); exact at the end.
  int64_t job_done() const { return share > 0 ? done * total / share : 0; }
};
using EvalProgress = std::function<void(const EvalProgressPoint&)>;

// How a caller follows and may end an evaluation; both members may be empty.
struct EvalControl {
  EvalProgress progress;  // e.g. a progress bar on rank 0
  // Read after every batch; the ranks agree on it (one small all-reduce a batch, also on ranks
  // whose share is done) and all stop at the same batch, so a stop signal that arrives during a
  // long evaluation is honoured within a batch instead of after the whole test set. The
  // result is then `interrupted`.
  const std::atomic<bool>* stop = nullptr;
  // Also return each image's numbers (EvalResult::per_image): one more all-reduce, of ten
  // numbers per image. Alike on every rank.
  bool per_image = false;
};

// The same, followed and possibly ended through `control`.
EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device,
                    const EvalControl& control);

}  // namespace agave::trainer
