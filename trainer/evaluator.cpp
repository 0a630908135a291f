#include "trainer/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "cluster/activity.h"
#include "data/loader.h"
#include "model/latent_probe.h"
#include "trainer/latent_stats.h"

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
          {prefix + "pixel_bpd", r.pixel_bpd},
          {prefix + "pixel_bpd_stderr", r.pixel_bpd_stderr},
          {prefix + "pixel_shuffled_bpd", r.pixel_shuffled_bpd},
          {prefix + "pixel_shuffled_bpd_stderr", r.pixel_shuffled_bpd_stderr},
          {prefix + "latent_use_bpd", r.latent_use_bpd},
          {prefix + "latent_use_bpd_stderr", r.latent_use_bpd_stderr},
          {prefix + "latent_use_images", r.latent_use_images},
          {prefix + "kl_bpd_layers", r.kl_bpd_layers},
          {prefix + "active_latent_channels", r.active_latent_channels},
          {prefix + "latent_channels", r.latent_channels},
          {prefix + "images", r.images},
          {prefix + "weights", weights_name(r.weights)},
          {"importance_samples", r.importance_samples}};
}

std::string describe(const EvalResult& r) {
  return fmt::format(
      "test ELBO {:.3f} ± {:.3f} bits/dim, IW(K={}) {:.3f} ± {:.3f}, KL {:.3f}, aux {:.3f}, VAE "
      "bound {:.3f}, latent use {:.4f} ± {:.4f} ({} of {} latent channels active) ({} images, {} "
      "weights)",
      r.elbo_bpd, r.elbo_bpd_stderr, r.importance_samples, r.iw_bpd, r.iw_bpd_stderr, r.kl_bpd,
      r.aux_bpd, r.vae_bpd, r.latent_use_bpd, r.latent_use_bpd_stderr, r.active_latent_channels,
      r.latent_channels, r.images, r.weights == EvalWeights::kEma ? "EMA" : "live");
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

// The images of `batch` in this rank's share and their split indices (undefined when none are).
struct ShareImages {
  torch::Tensor images, indices;
};

ShareImages images_in_share(const data::Batch& batch, const Share& share) {
  if (!share.by_index) return {batch.images, batch.indices};
  const auto keep =
      (batch.indices >= share.first).logical_and(batch.indices < share.first + share.count);
  if (!keep.any().item<bool>()) return {};
  return {batch.images.index({keep}), batch.indices.index({keep})};
}

// The latent layers' shape: `layers` maps of `channels` × `positions` (R·R) units; none for
// pixelcnn_only.
struct LatentShape {
  int64_t layers = 0, channels = 0, positions = 1;
  int64_t units() const { return layers * channels * positions; }
};

LatentShape latent_shape(const model::AgaveImpl& m) {
  if (!m.has_latents()) return {};
  const auto& v = m.options().vae();
  return {v.depth(), v.latent_channels(), v.latent_resolution() * v.latent_resolution()};
}

// Each evaluated image's numbers at its split index (the evaluated images are the split's first
// `total`), this rank's images only and zeros elsewhere, so that one all-reduce sum gathers every
// rank's; with a count per image, which must come back 1 everywhere. Empty unless asked for.
class ImageTable {
 public:
  enum Column {
    kEvaluated,
    kPaired,
    kElbo,
    kIw,
    kPixel,
    kShuffled,
    kUse,
    kKl,
    kAux,
    kVae,
    kColumns
  };

  ImageTable() = default;
  explicit ImageTable(int64_t total) : total_(total), v_(static_cast<size_t>(total * kColumns)) {}
  bool on() const { return total_ > 0; }
  const std::vector<double>& values() const { return v_; }

  // Images `index` (N, their split indices) have `bpd` (N) in `column`; kEvaluated and kPaired
  // count them.
  void put(const torch::Tensor& index, Column column, const torch::Tensor& bpd = {}) {
    if (!on()) return;
    const auto i = index.to(torch::kCPU, torch::kLong).contiguous();
    const auto v = bpd.defined() ? bpd.to(torch::kCPU, torch::kFloat64).contiguous()
                                 : torch::ones({i.numel()}, torch::kFloat64);
    for (int64_t n = 0; n < i.numel(); ++n) {
      const int64_t at = i.data_ptr<int64_t>()[n];
      if (at < 0 || at >= total_) {
        throw std::logic_error(
            fmt::format("evaluate: test image {} outside the {} evaluated", at, total_));
      }
      auto& cell = v_[static_cast<size_t>(at * kColumns + column)];
      cell = column == kEvaluated ? cell + 1 : v.data_ptr<double>()[n];
    }
  }

  // The rows of `reduced` (values() summed over the ranks), every image once unless the
  // evaluation was `interrupted` (then the images evaluated).
  std::vector<ImageScores> rows(const std::vector<double>& reduced, bool has_latents,
                                bool interrupted) const {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    std::vector<ImageScores> out;
    for (int64_t i = 0; i < total_; ++i) {
      const double* r = reduced.data() + i * kColumns;
      if (r[kEvaluated] != 1 && !(interrupted && r[kEvaluated] == 0)) {
        throw std::logic_error(
            fmt::format("evaluate: test image {} evaluated {} times", i, r[kEvaluated]));
      }
      if (r[kEvaluated] == 0) continue;
      const bool paired = r[kPaired] > 0;
      out.push_back({i, r[kElbo], r[kIw], r[kPixel], paired ? r[kShuffled] : kNaN,
                     paired ? r[kUse] : kNaN, has_latents ? r[kKl] : kNaN,
                     has_latents ? r[kAux] : kNaN, has_latents ? r[kVae] : kNaN});
    }
    return out;
  }

 private:
  int64_t total_ = 0;
  std::vector<double> v_;
};

// Per-image sums of each reported bound (bits/dim) and of its square, of each layer's KL, and of
// the posterior means and their squares per latent unit (Burda et al.'s covariance): means,
// standard errors and the active count after one all-reduce of `packed()`.
struct BoundSums {
  double elbo = 0, elbo2 = 0, kl = 0, iw = 0, iw2 = 0, aux = 0, vae = 0, vae2 = 0;
  double pixel = 0, pixel2 = 0, shuffled = 0, shuffled2 = 0, use = 0, use2 = 0;
  int64_t images = 0, paired = 0;
  std::vector<double> kl_layers;
  torch::Tensor z_sum, z_sum2;  // per unit, float64 on the CPU
  ImageTable per_image;         // each image's numbers, when asked for

  explicit BoundSums(const LatentShape& shape)
      : kl_layers(static_cast<size_t>(shape.layers)),
        z_sum(torch::zeros({shape.units()}, torch::kFloat64)),
        z_sum2(torch::zeros({shape.units()}, torch::kFloat64)) {}

  // The scalars first (kScalars of them), then kl_layers, z_sum, z_sum2.
  static constexpr size_t kScalars = 16;
  std::vector<double> packed() const {
    std::vector<double> out = {
        elbo,   elbo2,    kl,        iw,  iw2,  static_cast<double>(images), aux, vae, vae2, pixel,
        pixel2, shuffled, shuffled2, use, use2, static_cast<double>(paired)};
    out.insert(out.end(), kl_layers.begin(), kl_layers.end());
    for (const auto* t : {&z_sum, &z_sum2}) {
      out.insert(out.end(), t->data_ptr<double>(), t->data_ptr<double>() + t->numel());
    }
    return out;
  }
};

double sum_of(const torch::Tensor& t) { return t.sum().item<double>(); }

// Sums of a per-image bits/dim tensor and of its square.
void add_to(double& sum, double& sum2, const torch::Tensor& bpd) {
  sum += sum_of(bpd);
  sum2 += sum_of(bpd.pow(2));
}

// Sums of the pairs (matched, shuffled) of some images (split indices `index`), −ln p(x|z) in
// nats.
void add_pairs(const torch::Tensor& index, const torch::Tensor& pixel,
               const torch::Tensor& shuffled_nll, double to_bpd, BoundSums& s) {
  const auto shuffled = (shuffled_nll * to_bpd).to(torch::kFloat64);
  add_to(s.shuffled, s.shuffled2, shuffled);
  add_to(s.use, s.use2, shuffled - pixel);
  s.paired += pixel.size(0);
  s.per_image.put(index, ImageTable::kPaired);
  s.per_image.put(index, ImageTable::kShuffled, shuffled);
  s.per_image.put(index, ImageTable::kUse, shuffled - pixel);
}

// A batch of one image has no other image of its own to lend it a z (a rank's share often
// starts or ends with one): it takes the z of an image of the batch before it on this rank, or,
// when there is none yet, of the next batch. Only a share of a single image stays unpaired.
struct LoneImages {
  torch::Tensor donor_fz;                  // f(z) of one image of the last batch, 1×C×r×r
  torch::Tensor waiting_x, waiting_pixel;  // a first batch of one image, not paired yet
  torch::Tensor waiting_index;             // its split index
};

// The shuffled-z sums of a batch whose matched pixel term is `pixel` (bits/dim).
void add_shuffled(model::AgaveImpl& model, const torch::Tensor& x, const torch::Tensor& index,
                  const model::LatentProbe& p, const torch::Tensor& pixel, double to_bpd,
                  LoneImages& lone, BoundSums& s) {
  if (!p.fz.defined()) return;  // no latents
  const int64_t n = x.size(0);
  if (lone.waiting_x.defined()) {
    add_pairs(lone.waiting_index, lone.waiting_pixel,
              model::x_nll_given(model, lone.waiting_x, p.fz.narrow(0, 0, 1)), to_bpd, s);
    lone.waiting_x = lone.waiting_pixel = lone.waiting_index = torch::Tensor();
  }
  if (n >= 2) {
    add_pairs(index, pixel, p.x_nll_other, to_bpd, s);
  } else if (lone.donor_fz.defined()) {
    add_pairs(index, pixel, model::x_nll_given(model, x, lone.donor_fz), to_bpd, s);
  } else {
    lone.waiting_x = x;
    lone.waiting_pixel = pixel;
    lone.waiting_index = index;
  }
  lone.donor_fz = p.fz.narrow(0, n - 1, 1);
}

// Each layer's KL and the posterior means of a batch.
void add_layers(const model::LatentProbe& p, double to_bpd, BoundSums& s) {
  for (size_t l = 0; l < p.kl_layers.size(); ++l) {
    s.kl_layers[l] += sum_of(p.kl_layers[l] * to_bpd);
  }
  if (p.z_mean.empty()) return;
  std::vector<torch::Tensor> flat;
  for (const auto& m : p.z_mean) flat.push_back(m.flatten(1));  // channel-major per layer
  const auto means = torch::cat(flat, 1).to(torch::kCPU, torch::kFloat64);
  s.z_sum += means.sum(0);
  s.z_sum2 += means.pow(2).sum(0);
}

// Each image's own numbers, for the per-image table.
void put_images(const torch::Tensor& index, const torch::Tensor& elbo, const torch::Tensor& iw,
                const torch::Tensor& pixel, const torch::Tensor& kl, const torch::Tensor& aux,
                const torch::Tensor& vae, ImageTable& table) {
  table.put(index, ImageTable::kEvaluated);
  table.put(index, ImageTable::kElbo, elbo);
  table.put(index, ImageTable::kIw, iw);
  table.put(index, ImageTable::kPixel, pixel);
  table.put(index, ImageTable::kKl, kl);
  table.put(index, ImageTable::kAux, aux);
  table.put(index, ImageTable::kVae, vae);
}

void add_batch(model::Agave& model, const torch::Tensor& x, const torch::Tensor& index,
               const EvalOptions& options, uint64_t partner_seed, LoneImages& lone, BoundSums& s) {
  const double to_bpd = 1.0 / (model->dims_per_image() * std::log(2.0));
  const auto partner = torch::tensor(derangement(x.size(0), partner_seed), torch::kLong);
  // The ELBO's forward, its draw of z kept, plus one pass of the likelihood of x with the z of
  // other images; no random numbers beyond forward()'s, so the IW bound's draws are unchanged.
  const auto probe = model::probe_latents(*model, x, partner);
  const auto& terms = probe.terms;
  const auto elbo = ((terms.x_nll + terms.kl) * to_bpd).to(torch::kFloat64);
  const auto aux = (model->decoder_nll(terms) * to_bpd).to(torch::kFloat64);
  const auto vae = aux + (terms.kl * to_bpd).to(torch::kFloat64);
  const auto pixel = (terms.x_nll * to_bpd).to(torch::kFloat64);
  const auto iw =
      (-model->importance_weighted_bound(x, options.importance_samples, options.batch_size) *
       to_bpd)
          .to(torch::kFloat64);
  add_to(s.elbo, s.elbo2, elbo);
  s.kl += sum_of(terms.kl * to_bpd);
  s.aux += sum_of(aux);
  add_to(s.vae, s.vae2, vae);
  add_to(s.iw, s.iw2, iw);
  add_to(s.pixel, s.pixel2, pixel);
  put_images(index, elbo, iw, pixel, terms.kl * to_bpd, aux, vae, s.per_image);
  add_shuffled(*model, x, index, probe, pixel, to_bpd, lone, s);
  add_layers(probe, to_bpd, s);
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

// Mean and standard error of the mean from a sum and a sum of squares over n values.
double stderr_of(double sum, double sum2, double n) {
  if (n <= 1) return 0.0;
  const double var = std::max(0.0, sum2 / n - (sum / n) * (sum / n));
  return std::sqrt(var * n / (n - 1) / n);
}

void set_latent_use(const std::vector<double>& sums, const LatentShape& shape, bool has_latents,
                    EvalResult& r) {
  const double n = sums[5], paired = sums[15];
  r.pixel_bpd = sums[9] / n;
  r.pixel_bpd_stderr = stderr_of(sums[9], sums[10], n);
  r.latent_use_images = static_cast<int64_t>(paired);
  r.latent_channels = shape.layers * shape.channels;
  const auto layers = sums.begin() + BoundSums::kScalars;
  for (int64_t l = 0; l < shape.layers; ++l) r.kl_bpd_layers.push_back(layers[l] / n);
  const auto z_sum = layers + shape.layers, z_sum2 = z_sum + shape.units();
  r.active_latent_channels =
      active_channels(std::vector<double>(z_sum, z_sum2),
                      std::vector<double>(z_sum2, z_sum2 + shape.units()), n, shape.positions);
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (!has_latents || paired == 0) {
    r.pixel_shuffled_bpd = r.pixel_shuffled_bpd_stderr = kNaN;
    r.latent_use_bpd = r.latent_use_bpd_stderr = kNaN;
    return;
  }
  r.pixel_shuffled_bpd = sums[11] / paired;
  r.pixel_shuffled_bpd_stderr = stderr_of(sums[11], sums[12], paired);
  r.latent_use_bpd = sums[13] / paired;
  r.latent_use_bpd_stderr = stderr_of(sums[13], sums[14], paired);
}

EvalResult result_from(const std::vector<double>& sums, const EvalOptions& options,
                       const LatentShape& shape, model::ModelKind kind, bool interrupted) {
  EvalResult r;
  r.images = static_cast<int64_t>(sums[5]);
  r.importance_samples = options.importance_samples;
  r.interrupted = interrupted;
  if (r.images == 0) return r;
  const double n = sums[5];
  r.elbo_bpd = sums[0] / n;
  r.elbo_bpd_stderr = stderr_of(sums[0], sums[1], n);
  r.kl_bpd = sums[2] / n;
  r.iw_bpd = sums[3] / n;
  r.iw_bpd_stderr = stderr_of(sums[3], sums[4], n);
  r.aux_bpd = sums[6] / n;
  r.vae_bpd = sums[7] / n;
  r.vae_bpd_stderr = stderr_of(sums[7], sums[8], n);
  if (!model::has_latents(kind)) {
    r.aux_bpd = r.vae_bpd = r.vae_bpd_stderr = std::numeric_limits<double>::quiet_NaN();
  }
  set_latent_use(sums, shape, model::has_latents(kind), r);
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
  const LatentShape shape = latent_shape(*model);
  BoundSums sums(shape);
  if (control.per_image) sums.per_image = ImageTable(share.total);
  LoneImages lone;
  uint64_t batches = 0;
  if (control.progress) control.progress({0, share.count, share.total});
  bool exhausted = false;
  Next next = Next::kContinue;
  // One pass a loader batch: this rank's images in it (none once its share is done), then the
  // agreement on going on.
  while (next == Next::kContinue) {
    if (sums.images < share.count && !exhausted) {
      auto batch = loader->next();
      exhausted = !batch;
      const auto mine = batch ? images_in_share(*batch, share) : ShareImages();
      if (mine.images.defined()) {
        auto x = mine.images.to(device, /*non_blocking=*/true);
        auto index = mine.indices;
        if (x.size(0) > share.count - sums.images) {
          x = x.narrow(0, 0, share.count - sums.images);
          index = index.narrow(0, 0, x.size(0));
        }
        // Each batch its own derangement, fixed by the seed and the batch's place on this rank.
        add_batch(model, x, index, options, seed ^ (0x9E3779B97F4A7C15ull * ++batches), lone, sums);
        if (control.progress) control.progress({sums.images, share.count, share.total});
      }
    }
    next = agree_next(comm, control, sums.images < share.count && !exhausted);
  }
  auto r = result_from(comm.all_reduce_sum(sums.packed()), options, shape, model->options().kind(),
                       next == Next::kStopped);
  if (sums.per_image.on()) {
    r.per_image = sums.per_image.rows(comm.all_reduce_sum(sums.per_image.values()),
                                      model::has_latents(model->options().kind()), r.interrupted);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return r;
}

}  // namespace agave::trainer
