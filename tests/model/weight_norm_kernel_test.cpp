#include "model/weight_norm_kernel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/autocast.h"
#include "model/weight_norm.h"

namespace agave::model {
namespace {

// The reference: W = g · V / ‖V‖ as plain tensor ops, autograd deriving the backward.
torch::Tensor reference(const torch::Tensor& v, const torch::Tensor& g) {
  auto norm = v.pow(2).sum({1, 2, 3}, /*keepdim=*/true).sqrt();
  return v * (g.view({-1, 1, 1, 1}) / norm);
}

struct Grads {
  torch::Tensor w, dv, dg;
};

// W and the gradients of Σ W · U for a fixed U, by the fused node or the reference.
Grads run(bool fused, const torch::Tensor& v0, const torch::Tensor& g0, const torch::Tensor& u,
          c10::ScalarType out) {
  auto v = v0.detach().clone(at::MemoryFormat::Preserve).requires_grad_(true);
  auto g = g0.detach().clone().requires_grad_(true);
  auto w = fused ? fused_weight_norm(v, g, out) : reference(v, g).to(out);
  (w.to(torch::kFloat) * u).sum().backward();
  return {w.detach(), v.grad(), g.grad()};
}

class WeightNormKernel : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(3); }
  // 37 channels, block 5·3·2 = 30 (not a multiple of the 16 lanes), like a shifted conv.
  torch::Tensor v = torch::randn({37, 5, 3, 2}) * 0.05;
  torch::Tensor g = torch::rand({37}) + 0.5;
  torch::Tensor u = torch::randn({37, 5, 3, 2});
};

TEST_F(WeightNormKernel, MatchesTheTensorOpsForwardAndBackwardInFp32) {
  for (auto layout : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    auto vl = v.contiguous(layout);
    auto fused = run(true, vl, g, u, at::kFloat);
    auto ref = run(false, vl, g, u, at::kFloat);
    EXPECT_EQ(fused.w.strides(), vl.strides()) << "W is laid out like V";
    EXPECT_TRUE(torch::allclose(fused.w, ref.w, 1e-5, 1e-7));
    EXPECT_TRUE(torch::allclose(fused.dv, ref.dv, 1e-4, 1e-6))
        << (fused.dv - ref.dv).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(fused.dg, ref.dg, 1e-4, 1e-6));
  }
}

TEST_F(WeightNormKernel, GivesBf16WeightsRoundedAsACastOfTheFp32Ones) {
  auto fused = run(true, v, g, u, at::kBFloat16);
  auto ref = run(false, v, g, u, at::kBFloat16);
  ASSERT_EQ(fused.w.scalar_type(), at::kBFloat16);
  // The fp32 values agree to ~1e-7 relative, so at most a rounding boundary apart in bf16.
  EXPECT_LE((fused.w.to(torch::kFloat) - ref.w.to(torch::kFloat)).abs().max().item<float>(),
            ref.w.abs().max().item<float>() * 0.0079);
  EXPECT_GT((fused.w == ref.w).to(torch::kFloat).mean().item<float>(), 0.99);
  EXPECT_TRUE(torch::allclose(fused.dv, ref.dv, 1e-4, 1e-6));
}

TEST_F(WeightNormKernel, ABf16GradientOfWIsUsedAsGiven) {
  // Under autocast the convolution hands back dW in bf16; the node reads it without a copy.
  auto vg = v.clone().requires_grad_(true);
  auto gg = g.clone().requires_grad_(true);
  auto w = fused_weight_norm(vg, gg, at::kBFloat16);
  auto dw = u.to(at::kBFloat16);
  w.backward(dw);
  auto vr = v.clone().requires_grad_(true);
  auto gr = g.clone().requires_grad_(true);
  reference(vr, gr).backward(dw.to(torch::kFloat));
  EXPECT_TRUE(torch::allclose(vg.grad(), vr.grad(), 1e-4, 1e-6));
  EXPECT_TRUE(torch::allclose(gg.grad(), gr.grad(), 1e-4, 1e-6));
}

TEST_F(WeightNormKernel, GivesTheSameBitsWhateverTheThreadCount) {
  // Large enough (320 blocks of 960) to be split into several tasks.
  auto vb = torch::randn({320, 160, 2, 3}), gb = torch::rand({320}), ub = torch::randn_like(vb);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto one = run(true, vb, gb, ub, at::kFloat);
  torch::set_num_threads(std::max(2, threads));
  auto many = run(true, vb, gb, ub, at::kFloat);
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.w, many.w));
  EXPECT_TRUE(torch::equal(one.dv, many.dv));
  EXPECT_TRUE(torch::equal(one.dg, many.dg));
}

TEST_F(WeightNormKernel, TakesOnlyDenseFp32CpuKernels) {
  EXPECT_TRUE(fused_weight_norm_applies(v));
  EXPECT_TRUE(fused_weight_norm_applies(v.contiguous(at::MemoryFormat::ChannelsLast)));
  EXPECT_FALSE(fused_weight_norm_applies(v.to(torch::kDouble)));
  EXPECT_FALSE(fused_weight_norm_applies(v.transpose(0, 1)));  // a transposed conv's dim 1
  EXPECT_FALSE(fused_weight_norm_applies(v.slice(2, 0, 2)));   // channel blocks not dense
  EXPECT_FALSE(fused_weight_norm_applies(v.view({37, 30})));
  EXPECT_THROW(fused_weight_norm(v.to(torch::kDouble), g, at::kFloat), c10::Error);
}

TEST_F(WeightNormKernel, TheLayerUnderAutocastGivesTheConvolutionBf16Weights) {
  // The layer's output under bf16 autocast is what the tensor-op kernel cast to bf16 gives.
  WeightNormConv2d conv(WeightNormConv2dOptions(4, 6, 3).pad(1));
  auto x = torch::randn({2, 4, 8, 8});
  torch::Tensor fused_out, ref_out;
  {
    AutocastGuard autocast(true, false);
    EXPECT_EQ(convolution_dtype(x.device()), at::kBFloat16);
    fused_out = conv->forward(x);
    ref_out = torch::conv2d(torch::constant_pad_nd(x, {1, 1, 1, 1}), conv->weight(), conv->b);
  }
  EXPECT_EQ(convolution_dtype(x.device()), at::kFloat);
  ASSERT_EQ(fused_out.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(torch::allclose(fused_out.to(torch::kFloat), ref_out.to(torch::kFloat), 2e-2, 2e-2));
}

}  // namespace
}  // namespace agave::model
