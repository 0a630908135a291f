#include "model/vae.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace agave::model {
namespace {

WeightNormConv2d conv5x5(int64_t in, int64_t out, int64_t stride) {
  return WeightNormConv2d(WeightNormConv2dOptions(in, out, 5).stride(stride).pad(2));
}

// 5×5 stride-2 transposed conv, cropped from 2H+3 to exactly 2H.
WeightNormConv2d deconv5x5(int64_t in, int64_t out) {
  return WeightNormConv2d(WeightNormConv2dOptions(in, out, 5)
                              .stride(2)
                              .transposed(true)
                              .crop(torch::ExpandingArray<4>({2, 1, 2, 1})));
}

}  // namespace

int64_t log2_ratio(int64_t from, int64_t to, const char* what) {
  TORCH_CHECK(from > 0 && to > 0, what, ": sizes must be positive, got ", from, " and ", to);
  const int64_t big = std::max(from, to), small = std::min(from, to);
  int64_t k = 0;
  while ((small << k) < big) ++k;
  TORCH_CHECK((small << k) == big, what, ": ", from, " → ", to,
              " is not a power-of-two change of resolution");
  return to >= from ? k : -k;
}

VaeImpl::VaeImpl(const VaeOptions& options, int64_t image_channels, int64_t image_size,
                 int64_t aux_resolution)
    : options_(options),
      image_channels_(image_channels),
      image_size_(image_size),
      aux_resolution_(aux_resolution) {
  const int64_t w = options_.width(), zc = options_.latent_channels();
  const int64_t r = options_.latent_resolution();
  TORCH_CHECK(options_.depth() >= 1, "VAE: depth must be >= 1, got ", options_.depth());
  TORCH_CHECK(w >= 1 && zc >= 1, "VAE: width and latent_channels must be positive");
  TORCH_CHECK(options_.free_bits() >= 0.0, "VAE: free_bits must be >= 0");
  TORCH_CHECK(options_.iaf_steps() >= 0, "VAE: iaf_steps must be >= 0");
  TORCH_CHECK(image_channels >= 1, "VAE: image_channels must be positive");

  // The stem halves the resolution until it reaches the latent resolution.
  const int64_t down = -log2_ratio(image_size, r, "VAE image_size → latent_resolution");
  TORCH_CHECK(down >= 0, "VAE: latent_resolution ", r, " exceeds image_size ", image_size);
  stem_ = register_module("stem", torch::nn::Sequential());
  if (down == 0) stem_->push_back(conv5x5(image_channels, w, 1));
  for (int64_t i = 0; i < down; ++i) {
    if (i > 0) stem_->push_back(torch::nn::ELU());
    stem_->push_back(conv5x5(i == 0 ? image_channels : w, w, 2));
  }

  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < options_.depth(); ++l) {
    layers_->push_back(LadderLayer(w, zc, options_.iaf_steps()));
  }
  h_top_ = register_parameter("h_top", torch::zeros({w}));

  // Decoder: latent resolution → aux resolution in factor-2 steps (up or down).
  const int64_t steps = log2_ratio(r, aux_resolution, "VAE latent_resolution → aux resolution");
  decoder_ = register_module("decoder", torch::nn::Sequential());
  decoder_->push_back(torch::nn::ELU());
  const int64_t n = std::max<int64_t>(1, std::abs(steps));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t out = i + 1 == n ? image_channels : w;
    if (i > 0) decoder_->push_back(torch::nn::ELU());
    if (steps > 0) {
      decoder_->push_back(deconv5x5(w, out));
    } else {
      decoder_->push_back(conv5x5(w, out, steps < 0 ? 2 : 1));
    }
  }
  // (ours) the y scale starts broad (32 pixel levels) so the first steps are not dominated by
  // a few badly placed means.
  log_scale_ = register_parameter("log_scale", torch::full({image_channels}, std::log(32.0)));
}

VaeOutput VaeImpl::forward(const torch::Tensor& x, PosteriorMean mean) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == image_channels_ && x.size(2) == image_size_ &&
                  x.size(3) == image_size_,
              "VAE: expected x of shape N×", image_channels_, "×", image_size_, "×", image_size_,
              ", got ", x.sizes());
  // IAF-VAE's input scaling: pixel k ↦ (k + 0.5)/256 − 0.5 ∈ (−0.5, 0.5).
  auto h = stem_->forward((x.to(torch::kFloat) + 0.5) / 256.0 - 0.5);
  std::vector<LadderUp> ups;
  ups.reserve(layers_->size());
  for (size_t l = 0; l < layers_->size(); ++l) {
    ups.push_back(layers_[l]->as<LadderLayer>()->up(h));
    h = ups.back().h;
  }
  return top_down(x.size(0), LatentSource::kPosterior, &ups, nullptr, mean);
}

VaeOutput VaeImpl::sample_prior(int64_t n) {
  return top_down(n, LatentSource::kPrior, nullptr, nullptr);
}

VaeOutput VaeImpl::decode(const std::vector<torch::Tensor>& z) {
  TORCH_CHECK(z.size() == layers_->size(), "VAE: decode needs ", layers_->size(),
              " latent tensors, got ", z.size());
  return top_down(z.front().size(0), LatentSource::kGiven, nullptr, &z);
}

VaeOutput VaeImpl::top_down(int64_t n, LatentSource source, const std::vector<LadderUp>* ups,
                            const std::vector<torch::Tensor>* given, PosteriorMean mean) {
  const int64_t r = options_.latent_resolution();
  auto h = h_top_.view({1, -1, 1, 1}).expand({n, -1, r, r}).contiguous();
  const size_t depth = layers_->size();
  VaeOutput out;
  out.z.resize(depth);
  auto opts = h_top_.options().dtype(torch::kFloat);
  out.log_p = torch::zeros({n}, opts);
  const bool posterior = source == LatentSource::kPosterior;
  if (posterior) {
    out.log_q = torch::zeros({n}, opts);
    out.kl_train = torch::zeros({n}, opts);
    if (mean == PosteriorMean::kKeep) {
      out.kl_layers.resize(depth);
      out.z_mean.resize(depth);
    }
  }
  const double kl_min = options_.free_bits();
  for (size_t i = depth; i-- > 0;) {
    auto* layer = layers_[i]->as<LadderLayer>();
    if (i + 1 == depth) layer->opt_out_of_data_init();
    auto d = layer->down(h, source, posterior ? &(*ups)[i] : nullptr,
                         given ? (*given)[i] : torch::Tensor(), mean);
    h = d.h;
    out.z[i] = d.z;
    out.log_p = out.log_p + d.log_p.sum({1, 2, 3});
    if (!posterior) continue;
    out.log_q = out.log_q + d.log_q.sum({1, 2, 3});
    auto kl_channel = (d.log_q - d.log_p).sum({2, 3});  // N×Z
    if (mean == PosteriorMean::kKeep) {
      out.kl_layers[i] = kl_channel.sum(1);
      out.z_mean[i] = d.mean;
    }
    if (kl_min > 0.0) {
      // Free bits (IAF-VAE): a channel whose batch-average KL is below kl_min costs kl_min
      // and gets no gradient. Per image the active channels keep their own KL, so the batch
      // mean equals Σ_c max(mean_n KL_nc, kl_min) as in the original.
      torch::Tensor mean_kl;
      if (batch_sum_) {
        // [Σ_n KL_nc..., N] summed over replicas, in one reduction.
        auto local = torch::cat({kl_channel.detach().sum(0),
                                 torch::full({1}, static_cast<double>(n), kl_channel.options())});
        auto global = batch_sum_(local);
        mean_kl = (global.slice(0, 0, -1) / global.slice(0, -1)).unsqueeze(0);
      } else {
        mean_kl = kl_channel.detach().mean(0, /*keepdim=*/true);
      }
      auto active = mean_kl > kl_min;
      kl_channel = torch::where(active, kl_channel, torch::full_like(kl_channel, kl_min));
    }
    out.kl_train = out.kl_train + kl_channel.sum(1);
  }
  if (posterior) out.kl = out.log_q - out.log_p;
  out.fz = decoder_->forward(h).to(torch::kFloat);
  return out;
}

void VaeImpl::set_free_bits(double nats) {
  TORCH_CHECK(nats >= 0.0, "VAE: free_bits must be >= 0, got ", nats);
  options_.free_bits(nats);
}

}  // namespace agave::model
