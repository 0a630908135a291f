#include "optim/adamax.h"

#include <gtest/gtest.h>

#include <cmath>
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
