#include "trainer/evaluator.h"

#include <cmath>
#include <limits>
#include <memory>

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

EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device,
                    const EvalControl& control) {
  cluster::ActivityScope named("eval");
  data::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.rank = comm.rank();
  lo.world = comm.size();
  lo.seed = seed;
  lo.shuffle = false;
  lo.drop_last = false;  // every test image once
  lo.prefetch = 2;
  auto loader = std::make_unique<data::ShardLoader>(shards, "test", lo);
  // This rank's share: images [first, first + mine) of the first `total` of the split (the first
  // total mod n ranks hold one more). The whole split is the loader's own per-rank slicing; a
  // subset is read in split order by every rank, each keeping its own range, so a subset is the
  // same images at any rank count (the loader's slices of the whole split would not be).
  const int64_t split = loader->split_size();
  const int64_t total = options.subset > 0 ? std::min(options.subset, split) : split;
  const int64_t world = comm.size(), rank = comm.rank();
  const int64_t mine = total / world + (rank < total % world ? 1 : 0);
  const int64_t first = rank * (total / world) + std::min(rank, total % world);
  const bool by_index = total < split && world > 1;
  if (by_index) {
    lo.rank = 0;
    lo.world = 1;
    loader = std::make_unique<data::ShardLoader>(shards, "test", lo);
  }

  model::ScopedEval eval_mode(*model);
  torch::NoGradGuard no_grad;
  const double to_bpd = 1.0 / (model->dims_per_image() * std::log(2.0));
  const auto kind = model->options().kind();
  // Sums of x, x² for the ELBO, the IW bound and the VAE bound (bits/dim per image), of the KL
  // and the aux term, and the count.
  double s_elbo = 0, s2_elbo = 0, s_kl = 0, s_iw = 0, s2_iw = 0, s_aux = 0, s_vae = 0, s2_vae = 0;
  int64_t done = 0;
  bool exhausted = false, interrupted = false;
  // One pass a loader batch: this rank's images in it (none once its share is done), then,
  // when the caller can stop it, the agreement on stopping and on whether any rank has work.
  while (true) {
    if (done < mine && !exhausted) {
      auto batch = loader->next();
      exhausted = !batch;
      auto images = batch ? batch->images : torch::Tensor();
      if (batch && by_index) {
        const auto keep = (batch->indices >= first).logical_and(batch->indices < first + mine);
        images = keep.any().item<bool>() ? images.index({keep}) : torch::Tensor();
      }
      if (images.defined()) {
        auto x = images.to(device, /*non_blocking=*/true);
        if (x.size(0) > mine - done) x = x.narrow(0, 0, mine - done);
        const auto terms = model->forward(x, model::LossSelection{true, true, true});
        const auto elbo = ((terms.pixel_nll + terms.kl) * to_bpd).to(torch::kFloat64);
        s_elbo += elbo.sum().item<double>();
        s2_elbo += elbo.pow(2).sum().item<double>();
        s_kl += (terms.kl * to_bpd).sum().item<double>();
        // vae_only: the decoder term is its likelihood of x, held in pixel_nll.
        const auto& decoder = kind == model::ModelKind::kVaeOnly ? terms.pixel_nll : terms.aux_nll;
        const auto aux = (decoder * to_bpd).to(torch::kFloat64);
        const auto vae = aux + (terms.kl * to_bpd).to(torch::kFloat64);
        s_aux += aux.sum().item<double>();
        s_vae += vae.sum().item<double>();
        s2_vae += vae.pow(2).sum().item<double>();
        const auto iw =
            (-model->importance_weighted_bound(x, options.importance_samples, options.batch_size) *
             to_bpd)
                .to(torch::kFloat64);
        s_iw += iw.sum().item<double>();
        s2_iw += iw.pow(2).sum().item<double>();
        done += x.size(0);
        if (control.progress) control.progress(done, mine);
      }
    }
    const bool working = done < mine && !exhausted;
    if (!control.stop) {
      if (!working) break;
      continue;
    }
    const auto agreed =
        comm.all_reduce_sum({control.stop->load() ? 1.0 : 0.0, working ? 1.0 : 0.0});
    if (agreed[0] > 0) {
      interrupted = true;
      break;
    }
    if (agreed[1] == 0) break;
  }
  const auto sums = comm.all_reduce_sum(
      {s_elbo, s2_elbo, s_kl, s_iw, s2_iw, static_cast<double>(done), s_aux, s_vae, s2_vae});
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
  if (kind == model::ModelKind::kPixelCnnOnly) {
    r.aux_bpd = r.vae_bpd = r.vae_bpd_stderr = std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

}  // namespace agave::trainer
