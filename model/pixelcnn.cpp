#include "model/pixelcnn.h"

namespace agave::model {

namespace {
constexpr int64_t kScales = 3;
}  // namespace

int64_t gated_resnet_positions(int64_t nr) { return 2 * kScales * nr + 2; }

int64_t position_scale(int64_t p, int64_t nr) {
  TORCH_CHECK(p >= 0 && p < gated_resnet_positions(nr), "PixelCNN++: position ", p,
              " out of range for nr_resnet ", nr);
  if (p < kScales * nr) return p / nr;
  // Down pass: nr positions at the coarsest scale, then nr + 1 at each finer one.
  const int64_t d = p - kScales * nr;
  if (d < nr) return kScales - 1;
  return kScales - 2 - (d - nr) / (nr + 1);
}

int64_t mixture_param_channels(int64_t image_channels, int64_t nr_mix) {
  TORCH_CHECK(image_channels == 1 || image_channels == 3, "PixelCNN++: C must be 1 or 3, got ",
              image_channels);
  // C = 3: logits + 3 × (means, log-scales, coupling coefficients); C = 1 has no coupling.
  return image_channels == 3 ? 10 * nr_mix : 3 * nr_mix;
}

PixelCnnImpl::PixelCnnImpl(const PixelCnnOptions& options_, int64_t image_channels,
                           int64_t cond_channels, const PixelCnnConditioningOptions& cond_options_)
    : options(options_),
      cond_options(cond_options_),
      image_channels_(image_channels),
      cond_channels_(cond_channels) {
  const int64_t f = options.nr_filters(), nr = options.nr_resnet();
  TORCH_CHECK(f > 0 && nr >= 0 && options.nr_logistic_mix() > 0, "PixelCNN++: bad options");
  TORCH_CHECK(cond_channels >= 0, "PixelCNN++: cond_channels must be >= 0");
  const int64_t out_channels = mixture_param_channels(image_channels, options.nr_logistic_mix());
  const int64_t cf =
      cond_channels > 0 ? (cond_options.filters() > 0 ? cond_options.filters() : f) : 0;

  // +1: the ones channel that tells the network where the zero padding is.
  const int64_t in = image_channels + 1;
  u_init = register_module("u_init", WeightNormConv2d(down_shifted_conv(in, f, {2, 3})));
  ul_init_down =
      register_module("ul_init_down", WeightNormConv2d(down_shifted_conv(in, f, {1, 3})));
  ul_init_right =
      register_module("ul_init_right", WeightNormConv2d(down_right_shifted_conv(in, f, {2, 1})));

  auto block = [&](ShiftedConv conv, int64_t skip) {
    return GatedResnet(GatedResnetOptions(f, conv)
                           .skip_channels(skip)
                           .cond_channels(cf)
                           .cond_kernel(cond_options.projection_kernel())
                           .dropout(options.dropout()));
  };
  for (int64_t i = 0; i < kScales * nr; ++i) {
    up_u->push_back(block(ShiftedConv::kDown, 0));
    up_ul->push_back(block(ShiftedConv::kDownRight, f));
  }
  for (int64_t i = 0; i < kScales * nr + 2; ++i) {
    down_u->push_back(block(ShiftedConv::kDown, f));
    down_ul->push_back(block(ShiftedConv::kDownRight, 2 * f));
  }
  for (int64_t i = 0; i < kScales - 1; ++i) {
    u_downsample->push_back(WeightNormConv2d(down_shifted_conv(f, f, {2, 3}, 2)));
    ul_downsample->push_back(WeightNormConv2d(down_right_shifted_conv(f, f, {2, 2}, 2)));
    u_upsample->push_back(WeightNormConv2d(down_shifted_deconv(f, f)));
    ul_upsample->push_back(WeightNormConv2d(down_right_shifted_deconv(f, f)));
  }
  register_module("up_u", up_u);
  register_module("up_ul", up_ul);
  register_module("down_u", down_u);
  register_module("down_ul", down_ul);
  register_module("u_downsample", u_downsample);
  register_module("ul_downsample", ul_downsample);
  register_module("u_upsample", u_upsample);
  register_module("ul_upsample", ul_upsample);
  out = register_module("out", WeightNormConv2d(nin(f, out_channels)));

  if (cond_channels > 0 && options.conditioning() == PixelCnnConditioning::kPerLayer) {
    TORCH_CHECK(nr >= 1, "PixelCNN++: the per_layer conditioning stream needs nr_resnet >= 1");
    cond_options.filters(cf);
    cond_layers = torch::nn::ModuleList();
    for (int64_t p = 0; p < gated_resnet_positions(nr); ++p) {
      const int64_t s = position_scale(p, nr);
      if (p == 0) {
        cond_layers->push_back(WeightNormConv2d(plain_conv(cond_channels, cf, 3)));
      } else if (s > position_scale(p - 1, nr)) {
        cond_layers->push_back(WeightNormConv2d(plain_conv(cf, cf, 3, 2)));
      } else if (s < position_scale(p - 1, nr)) {
        cond_layers->push_back(WeightNormConv2d(plain_conv(cf, cf, 3)));
      } else {
        cond_layers->push_back(WeightNormConv2d(plain_conv(cf, cf, 3).init_scale(0.1)));
      }
    }
    register_module("cond_layers", cond_layers);
  } else if (cond_channels > 0) {
    const int64_t blocks =
        cond_options.blocks_per_scale() >= 0 ? cond_options.blocks_per_scale() : nr;
    cond_options.filters(cf).blocks_per_scale(blocks);
    cond_stem = register_module("cond_stem", WeightNormConv2d(plain_conv(cond_channels, cf, 3)));
    cond_blocks = torch::nn::ModuleList();
    cond_downsample = torch::nn::ModuleList();
    for (int64_t i = 0; i < kScales * blocks; ++i) {
      cond_blocks->push_back(WeightNormConv2d(plain_conv(cf, cf, 3).init_scale(0.1)));
    }
    for (int64_t i = 0; i < kScales - 1; ++i) {
      cond_downsample->push_back(WeightNormConv2d(plain_conv(cf, cf, 3, 2)));
    }
    register_module("cond_blocks", cond_blocks);
    register_module("cond_downsample", cond_downsample);
  }
}

CondFeatures PixelCnnImpl::cond_features(const torch::Tensor& cond) {
  if (cond_channels_ == 0) {
    TORCH_CHECK(!cond.defined(), "PixelCNN++: built unconditional but given a conditioning input");
    return {};
  }
  TORCH_CHECK(cond.defined() && cond.dim() == 4 && cond.size(1) == cond_channels_,
              "PixelCNN++: conditioning must be N×", cond_channels_, "×H×W");
  if (!cond_layers.is_empty()) {
    const int64_t nr = options.nr_resnet();
    CondFeatures features;
    auto layer = [&](int64_t p) { return cond_layers[p]->as<WeightNormConv2d>(); };
    auto h = layer(0)->forward(cond);
    features.push_back(h);
    for (int64_t p = 1; p < gated_resnet_positions(nr); ++p) {
      const int64_t s = position_scale(p, nr), prev = position_scale(p - 1, nr);
      if (s > prev) {
        h = layer(p)->forward(torch::elu(h));
      } else if (s < prev) {
        namespace F = torch::nn::functional;
        auto up = F::interpolate(torch::elu(h), F::InterpolateFuncOptions()
                                                    .scale_factor(std::vector<double>{2, 2})
                                                    .mode(torch::kNearest));
        h = layer(p)->forward(up);
      } else {
        h = h + layer(p)->forward(torch::elu(h));
      }
      features.push_back(h);
    }
    return features;
  }
  const int64_t blocks = cond_options.blocks_per_scale();
  CondFeatures features;
  auto h = cond_stem(cond);
  for (int64_t s = 0; s < kScales; ++s) {
    if (s > 0) h = cond_downsample[s - 1]->as<WeightNormConv2d>()->forward(torch::elu(h));
    for (int64_t i = 0; i < blocks; ++i) {
      h = h + cond_blocks[s * blocks + i]->as<WeightNormConv2d>()->forward(torch::elu(h));
    }
    features.push_back(h);
  }
  return features;
}

torch::Tensor PixelCnnImpl::forward(const torch::Tensor& x, const torch::Tensor& cond) {
  return forward_with_features(x, cond_features(cond));
}

torch::Tensor PixelCnnImpl::forward_with_features(const torch::Tensor& x,
                                                  const CondFeatures& features) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == image_channels_, "PixelCNN++: x must be N×",
              image_channels_, "×H×W");
  TORCH_CHECK(x.size(2) % 4 == 0 && x.size(3) % 4 == 0,
              "PixelCNN++: H and W must be divisible by 4");
  // No features on a conditioned network: it runs unconditioned, the stream's contribution zero
  // (the PixelCNN pretrained independently of the VAE, model/agave.h PixelCnnInput::kNone).
  const auto scales = cond_feature_scales();
  TORCH_CHECK(features.size() == scales.size() || features.empty(), "PixelCNN++: ",
              features.size(), " conditioning feature maps, expected ", scales.size());
  for (size_t k = 0; k < features.size(); ++k) {
    TORCH_CHECK(features[k].size(0) == x.size(0) &&
                    features[k].size(2) == (x.size(2) >> scales[k]) &&
                    features[k].size(3) == (x.size(3) >> scales[k]),
                "PixelCNN++: conditioning feature map ", k, " does not match x's size");
  }
  const int64_t nr = options.nr_resnet();
  auto h = [&](int64_t position) {
    return features.empty() ? torch::Tensor() : cond_map(features, position);
  };
  auto gr = [](torch::nn::ModuleList& list, int64_t i) { return list[i]->as<GatedResnet>(); };
  auto wn = [](torch::nn::ModuleList& list, int64_t i) { return list[i]->as<WeightNormConv2d>(); };

  auto xp = torch::cat({x, torch::ones({x.size(0), 1, x.size(2), x.size(3)}, x.options())}, 1);
  std::vector<torch::Tensor> us{down_shift(u_init(xp))};
  std::vector<torch::Tensor> uls{down_shift(ul_init_down(xp)) + right_shift(ul_init_right(xp))};

  for (int64_t s = 0; s < kScales; ++s) {
    for (int64_t r = 0; r < nr; ++r) {
      us.push_back(gr(up_u, s * nr + r)->forward(us.back(), {}, h(s * nr + r)));
      uls.push_back(gr(up_ul, s * nr + r)->forward(uls.back(), us.back(), h(s * nr + r)));
    }
    if (s + 1 < kScales) {
      us.push_back(wn(u_downsample, s)->forward(us.back()));
      uls.push_back(wn(ul_downsample, s)->forward(uls.back()));
    }
  }

  auto pop = [](std::vector<torch::Tensor>& v) {
    auto t = std::move(v.back());
    v.pop_back();
    return t;
  };
  auto u = pop(us), ul = pop(uls);
  int64_t i = 0;
  for (int64_t s = kScales - 1; s >= 0; --s) {
    const int64_t blocks = s == kScales - 1 ? nr : nr + 1;
    for (int64_t r = 0; r < blocks; ++r, ++i) {
      u = gr(down_u, i)->forward(u, pop(us), h(kScales * nr + i));
      ul = gr(down_ul, i)->forward(ul, torch::cat({u, pop(uls)}, 1), h(kScales * nr + i));
    }
    if (s > 0) {
      u = wn(u_upsample, kScales - 1 - s)->forward(u);
      ul = wn(ul_upsample, kScales - 1 - s)->forward(ul);
    }
  }
  TORCH_INTERNAL_ASSERT(us.empty() && uls.empty());
  return out(torch::elu(ul));
}

const torch::Tensor& PixelCnnImpl::cond_map(const CondFeatures& features, int64_t position) const {
  const int64_t nr = options.nr_resnet();
  const auto k = cond_layers.is_empty() ? position_scale(position, nr) : position;
  TORCH_CHECK(k < static_cast<int64_t>(features.size()), "PixelCNN++: no conditioning map for ",
              "position ", position, " among ", features.size());
  return features[k];
}

std::vector<int64_t> PixelCnnImpl::cond_feature_scales() const {
  std::vector<int64_t> scales;
  if (cond_channels_ == 0) return scales;
  const int64_t nr = options.nr_resnet();
  if (cond_layers.is_empty()) {
    for (int64_t s = 0; s < kScales; ++s) scales.push_back(s);
  } else {
    for (int64_t p = 0; p < gated_resnet_positions(nr); ++p)
      scales.push_back(position_scale(p, nr));
  }
  return scales;
}

void PixelCnnImpl::data_init(const torch::Tensor& x, const torch::Tensor& cond) {
  data_dependent_init(*this, [&] { forward(x, cond); });
}

}  // namespace agave::model
