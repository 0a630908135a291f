#include "cluster/gradient_bucketer.h"

#include <gtest/gtest.h>

#include "cluster/mpi_runtime.h"

extern agave::cluster::MpiRuntime* g_mpi;

namespace agave::cluster {
namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    // Registered first, so it lands in the last bucket (buckets fill in reverse order): a
    // parameter outside the graph must not hold back the buckets before it.
    unused = register_module("unused", torch::nn::Linear(4, 4));
    conv =
        register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 16, 3).padding(1)));
    fc1 = register_module("fc1", torch::nn::Linear(16 * 8 * 8, 256));
    fc2 = register_module("fc2", torch::nn::Linear(256, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(conv(x)).flatten(1);
    return fc2(torch::relu(fc1(x)));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, unused{nullptr};
};
TORCH_MODULE(Net);

torch::Tensor loss_of(Net& net, int rank) {
  torch::manual_seed(1000 + rank);  // every rank its own data
  auto x = torch::randn({4, 3, 8, 8});
  return net->forward(x).pow(2).mean();
}

class GradientBucketerOverlap : public ::testing::TestWithParam<bool> {};

TEST_P(GradientBucketerOverlap, AveragesGradientsOverRanks) {
  const bool overlap = GetParam();
  auto comm = make_mpi_communicator(g_mpi->world().comm(), 60);
  torch::manual_seed(comm->rank());  // different init everywhere...
  Net net;
  broadcast_module_state(*net, *comm);  // ...until rank 0's is broadcast
  auto ref = net->parameters()[0].clone();
  comm->broadcast(ref, 0);
  EXPECT_TRUE(torch::equal(ref, net->parameters()[0]));

  // Reference: this rank's own gradients, summed over ranks by hand.
  std::vector<torch::Tensor> expected;
  loss_of(net, comm->rank()).backward();
  for (auto& p : net->parameters()) {
    auto g = p.grad().defined() ? p.grad().clone() : torch::zeros_like(p);
    comm->all_reduce(g);
    expected.push_back(g / comm->size());
  }

  GradientBucketer bucketer(net->parameters(), *comm,
                            {/*bucket_mb=*/0.05, /*first=*/0.01, overlap});
  EXPECT_GE(bucketer.bucket_count(), 3u);
  for (int step = 0; step < 2; ++step) {  // twice: state must reset between steps
    bucketer.prepare();
    loss_of(net, comm->rank()).backward();
    bucketer.finish();
    const auto params = net->parameters();
    for (size_t k = 0; k < params.size(); ++k) {
      ASSERT_TRUE(params[k].grad().defined()) << k;
      EXPECT_TRUE(torch::allclose(params[k].grad(), expected[k], 1e-5, 1e-6)) << "param " << k;
    }
  }
  if (comm->size() > 1 && overlap) {
    // Every bucket but the one holding the unused layer started while backward was running.
    EXPECT_EQ(bucketer.launched_during_backward(),
              static_cast<int64_t>(bucketer.bucket_count()) - 1);
  }
  if (!overlap) {
    EXPECT_EQ(bucketer.launched_during_backward(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(DuringAndAfterBackward, GradientBucketerOverlap, ::testing::Bool());

TEST(GradientBucketer, FirstBucketIsSmallAndBucketsCoverAllParameters) {
  auto comm = make_mpi_communicator(g_mpi->world().comm(), 60);
  Net net;
  GradientBucketer bucketer(net->parameters(), *comm, {/*bucket_mb=*/0.25, /*first=*/0.001});
  int64_t total = 0;
  for (auto& p : net->parameters()) total += p.numel();
  const auto sizes = bucketer.bucket_numels();
  int64_t covered = 0;
  for (auto s : sizes) covered += s;
  EXPECT_EQ(covered, total);
  ASSERT_GE(sizes.size(), 2u);
  EXPECT_LT(sizes.front(), sizes[1]);
}

}  // namespace
}  // namespace agave::cluster
