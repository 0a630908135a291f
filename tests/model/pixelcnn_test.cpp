// The conditional PixelCNN++: causality, conditioning, size, init, overfitting.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <utility>
#include <vector>

#include "model/autocast.h"
#include "model/likelihood.h"
#include "model/pixelcnn.h"
#include "tests/model/test_util.h"

namespace agave::model {
namespace {

// Every test starts with this (not a fixture: a fixture would have to be named PixelCnn, and its
// name would hide the module inside the tests). Small configs run single-threaded: their ops
// are too small to split, and on a loaded 2-core machine every OpenMP barrier costs more than
// the op itself.
void single_threaded_and_seeded() {
  torch::set_num_threads(1);
  torch::manual_seed(1);
}

PixelCnnOptions small_options() {
  return PixelCnnOptions().nr_resnet(1).nr_filters(8).nr_logistic_mix(2).dropout(0.0);
}

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// For output pixel (i, j): the gradient of all its params w.r.t. x must vanish at (i, j) and
// every later pixel in raster order (all channels), and must not vanish at its left and upper
// neighbours (so the test would notice a network that ignores the past). Batches of 2: LibTorch
// routes batch-1 convs to a slow BLAS path, and the second image checks batch independence.
void expect_causal_at(PixelCnn& net, const torch::Tensor& x0, const torch::Tensor& cond, int64_t i,
                      int64_t j) {
  const int64_t w = x0.size(3);
  auto x = x0.clone().requires_grad_(true);
  auto params = net->forward(x, cond);
  params[0].select(1, i).select(1, j).sum().backward();
  EXPECT_EQ(x.grad()[1].abs().max().item<double>(), 0.0) << "images in a batch interact";
  auto dep = x.grad()[0].abs().sum(0).flatten();  // H·W, raster order
  const int64_t pos = i * w + j;
  EXPECT_EQ(dep.slice(0, pos, dep.size(0)).abs().max().item<double>(), 0.0)
      << "pixel (" << i << "," << j << ") depends on itself or the future";
  if (j > 0) {
    EXPECT_GT(dep[pos - 1].item<double>(), 0.0) << "ignores its left neighbour";
  }
  if (i > 0) {
    EXPECT_GT(dep[pos - w].item<double>(), 0.0) << "ignores the pixel above";
  }
  if (i > 0 && j + 1 < w) {
    EXPECT_GT(dep[pos - w + 1].item<double>(), 0.0) << "ignores above-right";
  }
}

std::vector<std::pair<int64_t, int64_t>> probe_pixels(int64_t h, int64_t w) {
  // Corners, scale boundaries (multiples of 2 and 4 and their neighbours) and the middle.
  return {{0, 0},     {0, 1},         {0, w - 1},     {1, 0},     {1, 1},         {3, 3},
          {3, 4},     {4, 3},         {4, 4},         {5, 7},     {h / 2, w / 2}, {h / 2 - 1, 2},
          {h - 1, 0}, {h - 1, w - 1}, {h - 2, w - 3}, {7, w - 1}, {8, 0},         {h - 4, w - 4}};
}

TEST(PixelCnn, CausalEverywhereOnSmallImages) {
  single_threaded_and_seeded();
  for (int64_t c : {1, 3}) {
    PixelCnn net(small_options(), c, 0);
    auto x = torch::rand({2, c, 8, 8}) * 2 - 1;
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t j = 0; j < 8; ++j) expect_causal_at(net, x, {}, i, j);
  }
}

constexpr PixelCnnConditioning kStreams[] = {PixelCnnConditioning::kPerLayer,
                                             PixelCnnConditioning::kShared};

TEST(PixelCnn, CausalOn28x28x1And32x32x3WithEitherConditioningStream) {
  single_threaded_and_seeded();
  for (auto stream : kStreams) {
    SCOPED_TRACE(pixelcnn_conditioning_name(stream));
    for (auto [c, size] : {std::pair<int64_t, int64_t>{1, 28}, {3, 32}}) {
      // Conditioned on an image of its own size: the conditioning path must not open a route
      // from x to earlier outputs.
      PixelCnn net(small_options().conditioning(stream), c, c,
                   PixelCnnConditioningOptions().filters(8));
      auto x = torch::rand({2, c, size, size}) * 2 - 1;
      auto cond = torch::randn({2, c, size, size});
      net->data_init(x, cond);
      for (auto [i, j] : probe_pixels(size, size)) expect_causal_at(net, x, cond, i, j);
    }
  }
}

TEST(PixelCnn, ConditioningIsSeenEverywhereButNeverSeesXWithEitherStream) {
  for (auto stream : kStreams) {
    SCOPED_TRACE(pixelcnn_conditioning_name(stream));
    single_threaded_and_seeded();
    PixelCnn net(small_options().conditioning(stream), 3, 3,
                 PixelCnnConditioningOptions().filters(8));
    auto x = torch::rand({1, 3, 16, 16}) * 2 - 1;
    auto cond = torch::randn({1, 3, 16, 16}, torch::requires_grad());
    auto params = net->forward(x, cond);
    // The first pixel has no past at all, so it is predicted from the conditioning alone...
    params.select(2, 0).select(2, 0).sum().backward();
    EXPECT_GT(cond.grad().abs().sum().item<double>(), 0.0);
    // ...including conditioning pixels "in its future" (below it): f(z) is not masked.
    EXPECT_GT(cond.grad().select(2, 3).abs().sum().item<double>(), 0.0);

    // The feature maps are a function of cond only: 3 resolutions (shared) or one map per
    // gated-resnet position (per_layer: 6·1 + 2 for nr_resnet 1).
    auto features = net->cond_features(cond.detach());
    const bool per_layer = stream == PixelCnnConditioning::kPerLayer;
    ASSERT_EQ(features.size(), per_layer ? 8u : 3u);
    EXPECT_EQ(features[1].size(2), 8);
    EXPECT_EQ(features[2].size(3), 4);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(net->forward_with_features(x, features), net->forward(x, cond)));
    // Changing x leaves the features untouched by construction; changing cond changes the output.
    auto other = net->forward(x, cond.detach() + 1.0);
    EXPECT_GT((other - params.detach()).abs().max().item<double>(), 1e-4);
    // A feature list of the other stream's length is refused with the counts.
    CondFeatures wrong(features.begin(), features.begin() + (per_layer ? 3 : 2));
    EXPECT_THROW(net->forward_with_features(x, wrong), c10::Error);
  }
}

// The paper's stream: one non-masked conv per gated-resnet position, each at the resolution of
// its position, and every one of them feeding the output.
TEST(PixelCnn, PerLayerStreamHasOneConvPerGatedResnetPositionAtItsResolution) {
  single_threaded_and_seeded();
  const int64_t nr = 2, s = 16;
  PixelCnn net(small_options().nr_resnet(nr).conditioning(PixelCnnConditioning::kPerLayer), 3, 3,
               PixelCnnConditioningOptions().filters(8));
  EXPECT_TRUE(net->cond_stem.is_empty());
  EXPECT_TRUE(net->cond_blocks.is_empty());
  // Up pass nr per scale at 16, 8, 4; down pass nr, nr + 1, nr + 1 at 4, 8, 16.
  const std::vector<int64_t> scales = {0, 0, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0};
  ASSERT_EQ(gated_resnet_positions(nr), static_cast<int64_t>(scales.size()));
  ASSERT_EQ(net->cond_layers->size(), scales.size());
  EXPECT_EQ(net->up_u->size() + net->down_u->size(), scales.size());
  EXPECT_EQ(net->cond_feature_scales(), scales);
  for (size_t p = 0; p < scales.size(); ++p) {
    EXPECT_EQ(position_scale(static_cast<int64_t>(p), nr), scales[p]) << "position " << p;
    const auto& o = net->cond_layers[p]->as<WeightNormConv2d>()->options;
    EXPECT_EQ((*o.kernel_size())[0], 3) << "position " << p;
    EXPECT_EQ((*o.kernel_size())[1], 3) << "position " << p;
    EXPECT_FALSE(o.transposed()) << "position " << p;
    const bool downsamples = p > 0 && scales[p] > scales[p - 1];
    EXPECT_EQ((*o.stride())[0], downsamples ? 2 : 1) << "position " << p;
    EXPECT_EQ(o.in_channels(), p == 0 ? 3 : 8) << "position " << p;
  }

  auto x = torch::rand({2, 3, s, s}) * 2 - 1;
  auto cond = torch::randn({2, 3, s, s});
  net->data_init(x, cond);
  auto features = net->cond_features(cond);
  ASSERT_EQ(features.size(), scales.size());
  std::vector<torch::Tensor> leaves;
  for (size_t p = 0; p < scales.size(); ++p) {
    EXPECT_EQ(features[p].sizes(), (std::vector<int64_t>{2, 8, s >> scales[p], s >> scales[p]}))
        << "position " << p;
    leaves.push_back(features[p].detach().requires_grad_(true));
  }
  // Each map reaches the output through its own position's gated resnets.
  auto grads = torch::autograd::grad({net->forward_with_features(x, leaves).sum()}, leaves);
  for (size_t p = 0; p < scales.size(); ++p) {
    EXPECT_GT(grads[p].abs().sum().item<double>(), 0.0) << "map " << p << " is not read";
    EXPECT_EQ(&net->cond_map(features, static_cast<int64_t>(p)), &features[p]);
  }
}

TEST(PixelCnn, OutputLayoutFor1And3Channels) {
  single_threaded_and_seeded();
  for (int64_t c : {1, 3}) {
    PixelCnn net(small_options().nr_logistic_mix(4), c, 0);
    auto y = net->forward(torch::zeros({2, c, 12, 20}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, c == 3 ? 40 : 12, 12, 20}));
    EXPECT_EQ(net->output_channels(), c == 3 ? 40 : 12);
  }
  PixelCnn net(small_options(), 3, 0);
  EXPECT_THROW(net->forward(torch::zeros({1, 3, 10, 8})), c10::Error);  // 10 % 4 != 0
  EXPECT_THROW(net->forward(torch::zeros({1, 3, 8, 8}), torch::zeros({1, 3, 8, 8})), c10::Error);
}

// Exact parameter count of PixelCNN++ (C = 3, no conditioning) from its layer list; the test
// then checks the module against it and against the published ≈53.7M.
int64_t expected_pixelcnn_params(int64_t nr, int64_t f, int64_t m) {
  auto wn = [](int64_t in, int64_t out, int64_t kh, int64_t kw) {
    return in * out * kh * kw + 2 * out;
  };
  const int64_t gr_u = wn(2 * f, f, 2, 3) + wn(2 * f, 2 * f, 2, 3);
  const int64_t gr_ul = wn(2 * f, f, 2, 2) + wn(2 * f, 2 * f, 2, 2);
  const int64_t up = 3 * nr * (gr_u + gr_ul + wn(2 * f, f, 1, 1));
  const int64_t down = (3 * nr + 2) * (gr_u + wn(2 * f, f, 1, 1) + gr_ul + wn(4 * f, f, 1, 1));
  const int64_t resample = 2 * 2 * (wn(f, f, 2, 3) + wn(f, f, 2, 2));
  const int64_t first = wn(4, f, 2, 3) + wn(4, f, 1, 3) + wn(4, f, 2, 1);
  return first + up + down + resample + wn(f, 10 * m, 1, 1);
}

TEST(PixelCnn, CifarDefaultsHave53_7MParametersAndRunFullSize) {
  single_threaded_and_seeded();
  torch::set_num_threads(2);
  const PixelCnnOptions cifar;  // 5 / 160 / 10 / 0.5
  PixelCnn plain(cifar, 3, 0);
  const int64_t n_plain = count_parameters(*plain);
  EXPECT_EQ(n_plain, expected_pixelcnn_params(5, 160, 10));
  EXPECT_NEAR(n_plain / 1e6, 53.7, 0.1);

  PixelCnn conditioned(cifar, 3, 3);
  const int64_t n_cond = count_parameters(*conditioned);
  // Stream: stem 3×3 (3→160), 3·5 residual 3×3 convs, 2 stride-2 3×3 convs; each of the 64
  // gated resnets adds a 1×1 conv 160 → 320.
  auto wn = [](int64_t in, int64_t out, int64_t k) { return in * out * k * k + 2 * out; };
  const int64_t stream = wn(3, 160, 3) + 17 * wn(160, 160, 3) + 64 * wn(160, 320, 1);
  EXPECT_EQ(n_cond - n_plain, stream);
  // per_layer: one 3×3 conv per gated-resnet position (32: the first 3→160, then 160→160),
  // and the same 64 1×1 projections.
  PixelCnn per_layer(PixelCnnOptions(cifar).conditioning(PixelCnnConditioning::kPerLayer), 3, 3);
  const int64_t n_per_layer = count_parameters(*per_layer);
  const int64_t per_layer_stream = wn(3, 160, 3) + 31 * wn(160, 160, 3) + 64 * wn(160, 320, 1);
  EXPECT_EQ(n_per_layer - n_plain, per_layer_stream);
  std::cout << "[ params ] PixelCNN++ CIFAR defaults: " << n_plain << " unconditional, " << n_cond
            << " with the shared conditioning stream (+" << stream << "), " << n_per_layer
            << " with the per_layer one (+" << per_layer_stream << ")\n";

  plain->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::rand({1, 3, 32, 32}) * 2 - 1;
  auto params = plain->forward(x);
  EXPECT_EQ(params.sizes(), (std::vector<int64_t>{1, 100, 32, 32}));
  EXPECT_TRUE(testing::all_finite(params));
  // Batch 2 here: LibTorch sends batch-1 convs to a much slower im2col/BLAS path.
  auto cond_params = conditioned->forward(torch::cat({x, x}), torch::randn({2, 3, 32, 32}));
  EXPECT_TRUE(testing::all_finite(cond_params));
}

TEST(PixelCnn, DataInitStandardisesTheOutputLayer) {
  single_threaded_and_seeded();
  PixelCnn net(small_options().nr_filters(16), 3, 3, PixelCnnConditioningOptions().filters(8));
  auto x = torch::rand({8, 3, 8, 8}) * 2 - 1;
  auto cond = torch::randn({8, 3, 8, 8});
  net->data_init(x, cond);
  for (const auto& m : net->modules(false)) {
    if (auto wn = std::dynamic_pointer_cast<WeightNormConv2dImpl>(m)) {
      EXPECT_FALSE(wn->data_init_pending());
    }
  }
  torch::NoGradGuard no_grad;
  auto out = net->forward(x, cond);
  auto mean = out.mean(std::vector<int64_t>{0, 2, 3}),
       std = out.var(std::vector<int64_t>{0, 2, 3}, false).sqrt();
  EXPECT_LT(mean.abs().max().item<double>(), 1e-3);
  EXPECT_NEAR(std.min().item<double>(), 1.0, 1e-3);
  EXPECT_NEAR(std.max().item<double>(), 1.0, 1e-3);
  EXPECT_TRUE(testing::all_finite(discretized_mix_logistic_log_prob(x, out)));
}

TEST(PixelCnn, AutocastChannelsLastForwardMatchesFp32) {
  single_threaded_and_seeded();
  torch::set_num_threads(2);
  PixelCnn net(small_options().nr_filters(32), 3, 3, PixelCnnConditioningOptions().filters(16));
  auto x = torch::rand({2, 3, 16, 16}) * 2 - 1;
  auto cond = torch::randn({2, 3, 16, 16});
  net->data_init(x, cond);
  for (auto& p : net->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  torch::NoGradGuard no_grad;
  auto ref = net->forward(x, cond);
  auto ref_ll = discretized_mix_logistic_log_prob(x, ref);
  torch::Tensor out, ll;
  {
    AutocastGuard autocast(/*enabled=*/true, /*cuda=*/false);
    out = net->forward(x.contiguous(at::MemoryFormat::ChannelsLast),
                       cond.contiguous(at::MemoryFormat::ChannelsLast));
    ll = discretized_mix_logistic_log_prob(x, out);
  }
  EXPECT_EQ(ll.scalar_type(), torch::kFloat);
  const double dims = 3 * 16 * 16 * std::log(2.0);
  EXPECT_LT(((ll - ref_ll).abs() / dims).max().item<double>(), 0.02);  // bits/dim
}

// A tiny PixelCNN memorises 4 structured 8×8 images far below the 8 bits/dim of a uniform model.
TEST(PixelCnn, TinyModelOverfitsFourImages) {
  single_threaded_and_seeded();
  auto ramp = torch::linspace(0, 255, 8).view({1, 8});
  std::vector<torch::Tensor> images;
  for (int k = 0; k < 4; ++k) {
    auto img = torch::zeros({1, 3, 8, 8});
    img.select(1, k % 3).add_(ramp.expand({8, 8}));
    img.select(1, (k + 1) % 3).fill_(40.0 * k);
    images.push_back(img);
  }
  auto x = (torch::cat(images).round() / 127.5 - 1.0).contiguous();
  PixelCnn net(PixelCnnOptions().nr_resnet(1).nr_filters(32).nr_logistic_mix(3).dropout(0.0), 3, 0);
  net->data_init(x);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(2e-3));
  const double dims = 3 * 8 * 8 * std::log(2.0);
  double bpd = 0;
  for (int step = 0; step < 150; ++step) {
    auto loss = -discretized_mix_logistic_log_prob(x, net->forward(x)).mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
    bpd = loss.item<double>() / dims;
    if (step % 50 == 0) std::cout << "[ overfit ] step " << step << ": " << bpd << " bits/dim\n";
  }
  std::cout << "[ overfit ] bits/dim after 150 steps: " << bpd << "\n";
  EXPECT_LT(bpd, 4.0);  // uniform: 8
}

}  // namespace
}  // namespace agave::model
