#include "trainer/evaluator.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "cluster/activity.h"
#include "data/loader.h"

namespace agave::trainer {

const char* weights_name(EvalWeights w) { return w == EvalWeights::kEma ? "ema" : "live"; }

nlohmann::json to_json(const EvalResult& r, const std::string& prefix) {
  return {{prefix + "elbo_bpd", r.elbo_bpd},
          {prefix + "elbo_bpd_stderr", r.elbo_bpd_stderr},
          {prefix + "iw_bpd", r.iw_bpd},
          {prefix + "iw_bpd_stderr", r.iw_bpd_stderr},
          {prefix + "kl_bpd", r.kl_bpd},
          {prefix + "aux_bpd", r.aux_bpd},
          {prefix + "vae_bpd", r.vae_bpd},
          {prefix + "vae_bpd_stderr", r.vae_bpd_stderr},
          {prefix + "images", r.images},
          {prefix + "weights", weights_name(r.weights)},
          {"importance_samples", r.importance_samples}};
}

std::string describe(const EvalResult& r) {
  return fmt::format(
      "test ELBO {:.3f} ± {:.3f} bits/dim, IW(K={}) {:.3f} ± {:.3f}, KL {:.3f}, aux {:.3f}, VAE "
      "bound {:.3f} ({} images, {} weights)",
      r.elbo_bpd, r.elbo_bpd_stderr, r.importance_samples, r.iw_bpd, r.iw_bpd_stderr, r.kl_bpd,
      r.aux_bpd, r.vae_bpd, r.images, r.weights == EvalWeights::kEma ? "EMA" : "live");
}

EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device) {
  return evaluate(model, shards, options, comm, seed, device, EvalControl());
}

namespace {

// This rank's share: images [first, first + count) of the first `total` of the split (the first
// total mod n ranks hold one more). The whole split is the loader's own per-rank slicing; a
// subset is read in split order by every rank, each keeping its own range, so a subset is the
// same images at any rank count (the loader's slices of the whole split would not be).
struct Share {
  int64_t first = 0, count = 0;
  int64_t total = 0;      // images of all ranks
  bool by_index = false;  // read the whole split on this rank and keep [first, first + count)
};

Share share_of(int64_t split, int64_t subset, int64_t rank, int64_t world) {
  const int64_t total = evaluated_images(subset, split);
  Share s;
  s.total = total;
  s.count = total / world + (rank < total % world ? 1 : 0);
  s.first = rank * (total / world) + std::min(rank, total % world);
  s.by_index = total < split && world > 1;
  return s;
}

std::unique_ptr<data::ShardLoader> open_test_split(const std::string& shards,
                                                   const EvalOptions& options, uint64_t seed,
                                                   int rank, int world) {
  data::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.rank = rank;
  lo.world = world;
  lo.seed = seed;
  lo.shuffle = false;
  lo.drop_last = false;  // every test image once
  lo.prefetch = 2;
  return std::make_unique<data::ShardLoader>(shards, "test", lo);
}

// The images of `batch` in this rank's share (undefined when none are).
torch::Tensor images_in_share(const data::Batch& batch, const Share& share) {
  if (!share.by_index) return batch.images;
  const auto keep =
      (batch.indices >= share.first).logical_and(batch.indices < share.first + share.count);
  return keep.any().item<bool>() ? batch.images.index({keep}) : torch::Tensor();
}

// Per-image sums of each reported bound (bits/dim) and of its square: means and standard
// errors after one all-reduce of `packed()`.
struct BoundSums {
  double elbo = 0, elbo2 = 0, kl = 0, iw = 0, iw2 = 0, aux = 0, vae = 0, vae2 = 0;
  int64_t images = 0;

  std::vector<double> packed() const {
    return {elbo, elbo2, kl, iw, iw2, static_cast<double>(images), aux, vae, vae2};
  }
};

double sum_of(const torch::Tensor& t) { return t.sum().item<double>(); }

void add_batch(model::Agave& model, const torch::Tensor& x, const EvalOptions& options,
               BoundSums& s) {
  const double to_bpd = 1.0 / (model->dims_per_image() * std::log(2.0));
  const auto terms = model->forward(x, model::LossSelection{true, true, true});
  const auto elbo = ((terms.x_nll + terms.kl) * to_bpd).to(torch::kFloat64);
  const auto aux = (model->decoder_nll(terms) * to_bpd).to(torch::kFloat64);
  const auto vae = aux + (terms.kl * to_bpd).to(torch::kFloat64);
  const auto iw =
      (-model->importance_weighted_bound(x, options.importance_samples, options.batch_size) *
       to_bpd)
          .to(torch::kFloat64);
  s.elbo += sum_of(elbo);
  s.elbo2 += sum_of(elbo.pow(2));
  s.kl += sum_of(terms.kl * to_bpd);
  s.aux += sum_of(aux);
  s.vae += sum_of(vae);
  s.vae2 += sum_of(vae.pow(2));
  s.iw += sum_of(iw);
  s.iw2 += sum_of(iw.pow(2));
  s.images += x.size(0);
}

// Whether the ranks go on after a batch: with a stop flag, all agree (one small all-reduce) to
// stop at the same batch, or to go on while any rank still has images.
enum class Next { kContinue, kDone, kStopped };

Next agree_next(cluster::Communicator& comm, const EvalControl& control, bool working) {
  if (!control.stop) return working ? Next::kContinue : Next::kDone;
  const auto agreed = comm.all_reduce_sum({control.stop->load() ? 1.0 : 0.0, working ? 1.0 : 0.0});
  if (agreed[0] > 0) return Next::kStopped;
  return agreed[1] > 0 ? Next::kContinue : Next::kDone;
}

EvalResult result_from(const std::vector<double>& sums, const EvalOptions& options,
                       model::ModelKind kind, bool interrupted) {
  EvalResult r;
  r.images = static_cast<int64_t>(sums[5]);
  r.importance_samples = options.importance_samples;
  r.interrupted = interrupted;
  if (r.images == 0) return r;
  const double n = sums[5];
  auto stderr_of = [n](double s, double s2) {
    const double var = std::max(0.0, s2 / n - (s / n) * (s / n));
    return n > 1 ? std::sqrt(var * n / (n - 1) / n) : 0.0;
  };
  r.elbo_bpd = sums[0] / n;
  r.elbo_bpd_stderr = stderr_of(sums[0], sums[1]);
  r.kl_bpd = sums[2] / n;
  r.iw_bpd = sums[3] / n;
  r.iw_bpd_stderr = stderr_of(sums[3], sums[4]);
  r.aux_bpd = sums[6] / n;
  r.vae_bpd = sums[7] / n;
  r.vae_bpd_stderr = stderr_of(sums[7], sums[8]);
  if (!model::has_latents(kind)) {
    r.aux_bpd = r.vae_bpd = r.vae_bpd_stderr = std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

}  // namespace

EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device,
                    const EvalControl& control) {
  cluster::ActivityScope named("eval");
  const auto started = std::chrono::steady_clock::now();
  auto loader = open_test_split(shards, options, seed, comm.rank(), comm.size());
  const Share share = share_of(loader->split_size(), options.subset, comm.rank(), comm.size());
  if (share.by_index) loader = open_test_split(shards, options, seed, 0, 1);

  model::ScopedEval eval_mode(*model);
  torch::NoGradGuard no_grad;
  BoundSums sums;
  if (control.progress) control.progress({0, share.count, share.total});
  bool exhausted = false;
  Next next = Next::kContinue;
  // One pass a loader batch: this rank's images in it (none once its share is done), then the
  // agreement on going on.
  while (next == Next::kContinue) {
    if (sums.images < share.count && !exhausted) {
      auto batch = loader->next();
      exhausted = !batch;
      auto images = batch ? images_in_share(*batch, share) : torch::Tensor();
      if (images.defined()) {
        auto x = images.to(device, /*non_blocking=*/true);
        if (x.size(0) > share.count - sums.images) x = x.narrow(0, 0, share.count - sums.images);
        add_batch(model, x, options, sums);
        if (control.progress) control.progress({sums.images, share.count, share.total});
      }
    }
    next = agree_next(comm, control, sums.images < share.count && !exhausted);
  }
  auto r = result_from(comm.all_reduce_sum(sums.packed()), options, model->options().kind(),
                       next == Next::kStopped);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return r;
}

}  // namespace agave::trainer
