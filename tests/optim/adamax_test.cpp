#include "optim/adamax.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>

namespace agave::optim {
namespace {

// Adamax by hand for one scalar (Kingma & Ba 2015, Algorithm 2; u with eps inside the max).
struct Reference {
  double m = 0, u = 0, p;
  int t = 0;
  explicit Reference(double p0) : p(p0) {}
  void step(double g, double lr, double b1, double b2, double eps) {
    ++t;
    m = b1 * m + (1 - b1) * g;
    u = std::max(b2 * u, std::abs(g) + eps);
    p -= lr / (1 - std::pow(b1, t)) * m / u;
  }
};

TEST(Adamax, MatchesTheAlgorithmStepByStep) {
  auto w = torch::tensor({1.5, -2.0, 0.25}, torch::kFloat64).set_requires_grad(true);
  Adamax opt({w}, AdamaxOptions(0.01).beta1(0.8).beta2(0.99).eps(1e-8));
  std::vector<Reference> ref = {Reference(1.5), Reference(-2.0), Reference(0.25)};
  for (int s = 0; s < 25; ++s) {
    opt.zero_grad();
    auto loss = (w.pow(3) - 2 * w).sum() * (s % 3 == 0 ? -1.0 : 1.0);  // gradients change sign
    loss.backward();
    for (int i = 0; i < 3; ++i) ref[i].step(w.grad()[i].item<double>(), 0.01, 0.8, 0.99, 1e-8);
    opt.step();
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(w[i].item<double>(), ref[i].p, 1e-12) << "step " << s;
  }
  EXPECT_EQ(opt.states()[0].step, 25);
}

// Steps `w` with Adamax on a fixed sequence of gradients, each laid out as `layout` gives it.
torch::Tensor train_with(const torch::Tensor& w0,
                         const std::function<torch::Tensor(torch::Tensor)>& layout) {
  auto w = w0.clone().set_requires_grad(true);
  Adamax opt({w}, AdamaxOptions(0.01).beta1(0.8).beta2(0.99).eps(1e-8));
  torch::manual_seed(5);
  for (int s = 0; s < 12; ++s) {
    w.mutable_grad() = layout(torch::randn(w.sizes()) * (s % 4 == 0 ? 1e-3 : 1.0));
    opt.step();
  }
  return w.detach();
}

TEST(Adamax, TheOnePassFp32UpdateMatchesTheTensorOps) {
  // fp32 CPU parameters whose gradient has the parameter's layout take the one-pass loop; a
  // gradient with other strides takes the tensor ops. Both are the same arithmetic.
  auto w0 = torch::randn({8, 6});
  auto fused = train_with(w0, [](torch::Tensor g) { return g; });
  auto ops = train_with(w0, [](torch::Tensor g) { return g.t().contiguous().t(); });
  EXPECT_TRUE(torch::allclose(fused, ops, 1e-6, 1e-7)) << (fused - ops).abs().max();
  EXPECT_FALSE(torch::equal(fused, w0));
  // And both follow the algorithm in double precision.
  auto exact =
      train_with(w0.to(torch::kFloat64), [](torch::Tensor g) { return g.to(torch::kFloat64); });
  EXPECT_TRUE(torch::allclose(fused.to(torch::kFloat64), exact, 1e-5, 1e-6));
}

TEST(Adamax, ANonFiniteGradientReachesTheStateAsTheTensorOpsLetIt) {
  auto w = torch::zeros({4}).set_requires_grad(true);
  Adamax opt({w}, AdamaxOptions(0.01));
  w.mutable_grad() = torch::tensor({1.0f, NAN, -1.0f, 2.0f});
  opt.step();
  EXPECT_TRUE(std::isnan(opt.states()[0].exp_inf[1].item<float>()));
  EXPECT_TRUE(std::isnan(w[1].item<float>()));
  w.mutable_grad() = torch::ones({4});
  opt.step();
  EXPECT_TRUE(std::isnan(opt.states()[0].exp_inf[1].item<float>())) << "a NaN in u stays";
  EXPECT_FALSE(std::isnan(w[0].item<float>()));
}

TEST(Adamax, SkipsParametersWithoutGradient) {
  auto a = torch::ones({2}).set_requires_grad(true);
  auto b = torch::ones({2}).set_requires_grad(true);
  Adamax opt({a, b}, AdamaxOptions(0.1));
  (a * 3).sum().backward();
  opt.step();
  EXPECT_TRUE(torch::equal(b, torch::ones({2})));
  EXPECT_FALSE(torch::equal(a, torch::ones({2})));
  EXPECT_EQ(opt.states()[1].step, 0);
}

TEST(Adamax, SavedStateContinuesIdentically) {
  auto make = [] { return torch::linspace(-1, 1, 10).set_requires_grad(true); };
  auto run = [](torch::Tensor w, Adamax& opt, int steps) {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      (w.sin() * w).sum().backward();
      opt.step();
    }
  };
  auto w1 = make();
  Adamax o1({w1}, AdamaxOptions(0.05));
  run(w1, o1, 10);

  auto w2 = make();
  Adamax o2({w2}, AdamaxOptions(0.05));
  run(w2, o2, 5);
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive out;
    o2.save(out);
    out.save_to(buffer);
  }
  auto w3 = w2.detach().clone().set_requires_grad(true);
  Adamax o3({w3}, AdamaxOptions(0.05));
  {
    torch::serialize::InputArchive in;
    in.load_from(buffer);
    o3.load(in);
  }
  run(w3, o3, 5);
  EXPECT_TRUE(torch::equal(w1, w3));  // bit-identical
}

}  // namespace
}  // namespace agave::optim
