#include "trainer/evaluator.h"

#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "cluster/activity.h"
#include "data/loader.h"

namespace agave::trainer {

nlohmann::json to_json(const EvalResult& r, const std::string& prefix) {
  return {{prefix + "elbo_bpd", r.elbo_bpd},
          {prefix + "elbo_bpd_stderr", r.elbo_bpd_stderr},
          {prefix + "iw_bpd", r.iw_bpd},
          {prefix + "iw_bpd_stderr", r.iw_bpd_stderr},
          {prefix + "kl_bpd", r.kl_bpd},
          {prefix + "images", r.images},
          {"importance_samples", r.importance_samples}};
}

std::string describe(const EvalResult& r) {
  return fmt::format(
      "test ELBO {:.3f} ± {:.3f} bits/dim, IW(K={}) {:.3f} ± {:.3f}, KL {:.3f} ({} images)",
      r.elbo_bpd, r.elbo_bpd_stderr, r.importance_samples, r.iw_bpd, r.iw_bpd_stderr, r.kl_bpd,
      r.images);
}

EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device) {
  return evaluate(model, shards, options, comm, seed, device, EvalProgress());
}

EvalResult evaluate(model::Agave& model, const std::string& shards, const EvalOptions& options,
                    cluster::Communicator& comm, uint64_t seed, const torch::Device& device,
                    const EvalProgress& progress) {
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
  // Sums of x, x² for the ELBO and IW bound (bits/dim per image), the KL, and the count.
  double s_elbo = 0, s2_elbo = 0, s_kl = 0, s_iw = 0, s2_iw = 0;
  int64_t done = 0;
  while (done < mine) {
    auto batch = loader->next();
    if (!batch) break;
    auto images = batch->images;
    if (by_index) {
      const auto keep = (batch->indices >= first).logical_and(batch->indices < first + mine);
      if (!keep.any().item<bool>()) continue;
      images = images.index({keep});
    }
    auto x = images.to(device, /*non_blocking=*/true);
    if (x.size(0) > mine - done) x = x.narrow(0, 0, mine - done);
    const auto terms = model->forward(x, model::LossSelection{true, false, true});
    const auto elbo = ((terms.pixel_nll + terms.kl) * to_bpd).to(torch::kFloat64);
    s_elbo += elbo.sum().item<double>();
    s2_elbo += elbo.pow(2).sum().item<double>();
    s_kl += (terms.kl * to_bpd).sum().item<double>();
    const auto iw =
        (-model->importance_weighted_bound(x, options.importance_samples, options.batch_size) *
         to_bpd)
            .to(torch::kFloat64);
    s_iw += iw.sum().item<double>();
    s2_iw += iw.pow(2).sum().item<double>();
    done += x.size(0);
    if (progress) progress(done, mine);
  }
  const auto sums =
      comm.all_reduce_sum({s_elbo, s2_elbo, s_kl, s_iw, s2_iw, static_cast<double>(done)});
  EvalResult r;
  r.images = static_cast<int64_t>(sums[5]);
  r.importance_samples = options.importance_samples;
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
  return r;
}

}  // namespace agave::trainer
