// The precision rule: which dtype and weight layout a run computes in, per device and CPU.
#include "trainer/precision.h"

#include <gtest/gtest.h>

namespace agave::trainer {
namespace {

const CpuFeatures kAmx =
    CpuFeatures::from_flags("flags : fpu avx512f avx512_bf16 amx_bf16 amx_tile");
const CpuFeatures kAvx512Bf16 = CpuFeatures::from_flags("flags : fpu avx512f avx512_bf16");
const CpuFeatures kPlain = CpuFeatures::from_flags("flags : fpu sse2 avx2");

TEST(CpuFeatures, ReadsWholeFlagsOnly) {
  EXPECT_TRUE(kAmx.amx_bf16);
  EXPECT_TRUE(kAmx.avx512_bf16);
  EXPECT_FALSE(kAvx512Bf16.amx_bf16);
  EXPECT_TRUE(kAvx512Bf16.avx512_bf16);
  // A longer flag that merely contains the name is not the feature.
  EXPECT_FALSE(CpuFeatures::from_flags("flags : xamx_bf16 avx512_bf16x").amx_bf16);
  EXPECT_FALSE(CpuFeatures::from_flags("flags : xamx_bf16 avx512_bf16x").avx512_bf16);
}

TEST(ChooseNumerics, AutoIsBf16OnlyWhereAmxMakesItPay) {
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(describe(choose_numerics(Precision::kAuto, cpu, kAmx)),
            "bf16 autocast + channels_last");
  // bf16 dot products without AMX: oneDNN's bf16 convolutions were measured slower than fp32.
  EXPECT_EQ(describe(choose_numerics(Precision::kAuto, cpu, kAvx512Bf16)), "fp32 + channels_last");
  EXPECT_EQ(describe(choose_numerics(Precision::kAuto, cpu, kPlain)), "fp32 + channels_last");
}

TEST(ChooseNumerics, AnExplicitPrecisionWinsOverTheCpu) {
  const torch::Device cpu(torch::kCPU);
  EXPECT_TRUE(choose_numerics(Precision::kBf16, cpu, kPlain).bf16);
  EXPECT_FALSE(choose_numerics(Precision::kFp32, cpu, kAmx).bf16);
  EXPECT_TRUE(choose_numerics(Precision::kFp32, cpu, kAmx).channels_last);
}

TEST(ChooseNumerics, CudaIsBf16ChannelsLastUnlessFp32IsAsked) {
  const torch::Device cuda(torch::kCUDA, 0);
  EXPECT_EQ(describe(choose_numerics(Precision::kAuto, cuda, kPlain)),
            "bf16 autocast + channels_last");
  EXPECT_EQ(describe(choose_numerics(Precision::kFp32, cuda, kAmx)), "fp32");
}

TEST(ApplyLayout, PutsFourDimensionalWeightsInChannelsLastOnlyWhenAsked) {
  torch::nn::Sequential m(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)),
                          torch::nn::Linear(8, 2));
  apply_layout(Numerics{false, false}, *m);
  for (const auto& p : m->parameters()) EXPECT_TRUE(p.is_contiguous());
  const auto before = m->parameters()[0].detach().clone();
  apply_layout(Numerics{false, true}, *m);
  const auto conv_weight = m->parameters()[0];
  EXPECT_TRUE(conv_weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(conv_weight.is_contiguous());
  EXPECT_TRUE(torch::equal(conv_weight, before));   // same values, other memory order
  EXPECT_TRUE(m->parameters()[2].is_contiguous());  // the linear layer's 2-d weight
}

}  // namespace
}  // namespace agave::trainer
