#include "cluster/communicator.h"

#include <gtest/gtest.h>

#include <thread>

#include "cluster/mpi_runtime.h"

extern agave::cluster::MpiRuntime* g_mpi;

namespace agave::cluster {
namespace {

std::unique_ptr<Communicator> world_comm(double timeout = 60) {
  return make_mpi_communicator(g_mpi->world().comm(), timeout);
}

TEST(MpiCommunicator, AllReduceSumsEveryDtype) {
  auto comm = world_comm();
  const int r = comm->rank(), n = comm->size();
  ASSERT_EQ(n, g_mpi->placement().world_size);
  auto f = torch::full({1000}, static_cast<float>(r + 1));
  comm->all_reduce(f);
  EXPECT_TRUE(torch::allclose(f, torch::full({1000}, n * (n + 1) / 2.0f)));
  auto d = torch::arange(5, torch::kFloat64) * (r + 1);
  comm->all_reduce(d);
  EXPECT_TRUE(torch::allclose(d, torch::arange(5, torch::kFloat64) * (n * (n + 1) / 2.0)));
  auto i = torch::tensor({int64_t{1} << 40}, torch::kInt64);
  comm->all_reduce(i);
  EXPECT_EQ(i.item<int64_t>(), n * (int64_t{1} << 40));
}

TEST(MpiCommunicator, AsyncAllReducesCompleteInOrder) {
  auto comm = world_comm();
  std::vector<torch::Tensor> ts;
  std::vector<std::unique_ptr<Work>> works;
  for (int k = 0; k < 8; ++k) {
    ts.push_back(torch::full({1 << 14}, static_cast<float>(k * (comm->rank() + 1))));
    works.push_back(comm->all_reduce_async(ts.back()));
  }
  for (auto& w : works) w->wait();
  const float total = comm->size() * (comm->size() + 1) / 2.0f;
  for (int k = 0; k < 8; ++k) EXPECT_FLOAT_EQ(ts[k][17].item<float>(), k * total);
  EXPECT_TRUE(works.back()->done());
}

TEST(MpiCommunicator, BroadcastAndHostHelpers) {
  auto comm = world_comm();
  auto t = torch::full({3, 4}, static_cast<float>(comm->rank() + 10));
  comm->broadcast(t, 0);
  EXPECT_TRUE(torch::equal(t, torch::full({3, 4}, 10.0f)));
  const auto sums = comm->all_reduce_sum({1.0, static_cast<double>(comm->rank())});
  EXPECT_DOUBLE_EQ(sums[0], comm->size());
  EXPECT_DOUBLE_EQ(sums[1], comm->size() * (comm->size() - 1) / 2.0);
  EXPECT_DOUBLE_EQ(comm->all_reduce_max(comm->rank() * 2.5), (comm->size() - 1) * 2.5);
  const auto all = comm->all_gather(comm->rank() + 0.5);
  ASSERT_EQ(all.size(), static_cast<size_t>(comm->size()));
  for (int k = 0; k < comm->size(); ++k) EXPECT_DOUBLE_EQ(all[k], k + 0.5);
  comm->barrier();
  const auto strings = comm->all_gather_string(std::string(comm->rank() * 3, 'a' + comm->rank()));
  ASSERT_EQ(strings.size(), static_cast<size_t>(comm->size()));
  for (int k = 0; k < comm->size(); ++k) EXPECT_EQ(strings[k], std::string(k * 3, 'a' + k));
}

TEST(MpiCommunicator, RejectsTensorsItCannotReduce) {
  auto comm = world_comm();
  auto strided = torch::zeros({4, 4}).t();
  EXPECT_THROW(comm->all_reduce_async(strided), std::invalid_argument);
  auto bf16 = torch::zeros({4}, torch::kBFloat16);
  EXPECT_THROW(comm->all_reduce_async(bf16), std::invalid_argument);
}

TEST(MpiCommunicator, StuckPeerTimesOutWithNamedError) {
  if (g_mpi->placement().world_size < 2) GTEST_SKIP() << "needs 2 ranks";
  auto comm = world_comm(/*timeout=*/0.5);
  auto t = torch::ones({16});
  if (comm->rank() == 1) {
    // Late by more than the timeout: rank 0 must give up with an error, not hang.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    comm->all_reduce_async(t)->wait();
    SUCCEED();
  } else {
    auto work = comm->all_reduce_async(t);
    try {
      work->wait();
      ADD_FAILURE() << "no timeout";
    } catch (const CollectiveTimeout& e) {
      EXPECT_NE(std::string(e.what()).find("did not complete within 0 s"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(comm->rank()) + " of"),
                std::string::npos)
          << e.what();
    }
  }
  // Once the late rank arrived, the collective finished and the communicator still works.
  g_mpi->world().barrier();
}

TEST(MpiCommunicator, SplitGroupsReduceSeparately) {
  const int n = g_mpi->placement().world_size;
  const int color = g_mpi->placement().world_rank % 2;
  auto group = g_mpi->world().split(color, g_mpi->placement().world_rank);
  auto comm = make_mpi_communicator(group->comm(), 60);
  auto t = torch::ones({1});
  comm->all_reduce(t);
  const int expected = color == 0 ? (n + 1) / 2 : n / 2;
  EXPECT_EQ(t.item<float>(), expected);
  EXPECT_EQ(comm->size(), expected);
}

#if defined(AGAVE_WITH_NCCL)
// NCCL on the GPU: one device per rank, so on a one-GPU machine this runs at world size 1 (the
// reduce is then an identity, but the communicator, streams, events and waits are exercised).
TEST(NcclCommunicator, AllReduceBroadcastAndHostHelpersOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int devices = static_cast<int>(torch::cuda::device_count());
  if (g_mpi->placement().world_size > devices) GTEST_SKIP() << "fewer GPUs than ranks";
  const int dev = g_mpi->placement().local_rank % devices;
  auto comm = make_nccl_communicator(g_mpi->world().comm(), dev, 60);
  const int n = comm->size();
  auto opts = torch::TensorOptions().device(torch::kCUDA, dev);
  auto t = torch::full({1 << 20}, static_cast<float>(comm->rank() + 1), opts);
  comm->all_reduce_async(t)->wait();
  EXPECT_TRUE(torch::allclose(t.cpu(), torch::full({1 << 20}, n * (n + 1) / 2.0f)));
  auto b = torch::full({7}, static_cast<float>(comm->rank() + 5), opts);
  comm->broadcast(b, 0);
  EXPECT_TRUE(torch::equal(b.cpu(), torch::full({7}, 5.0f)));
  EXPECT_DOUBLE_EQ(comm->all_reduce_sum({1.0})[0], n);
  comm->barrier();
}
#endif

}  // namespace
}  // namespace agave::cluster
