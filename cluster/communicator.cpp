#include "cluster/communicator.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "cluster/job_channel.h"

namespace agave::cluster {
namespace {
std::atomic<TimeoutHandler> g_timeout_handler{nullptr};
}  // namespace

void set_timeout_handler(TimeoutHandler handler) { g_timeout_handler.store(handler); }

void collective_timed_out(const std::string& line) {
  if (const auto handler = g_timeout_handler.load()) handler(line);
  throw CollectiveTimeout(line);
}

std::vector<int> world_ranks_of(MPI_Comm comm) {
  int size = 0;
  MPI_Comm_size(comm, &size);
  MPI_Group mine = MPI_GROUP_NULL, world = MPI_GROUP_NULL;
  MPI_Comm_group(comm, &mine);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> local(static_cast<size_t>(size)), out(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) local[static_cast<size_t>(r)] = r;
  MPI_Group_translate_ranks(mine, size, local.data(), world, out.data());
  MPI_Group_free(&mine);
  MPI_Group_free(&world);
  return out;
}

void Communicator::barrier_while_alive(const std::string& what) {
  auto work = barrier_async();
  // bound: liveness (wait_while_alive), probed every cluster.timeout_seconds.
  wait_while_alive([&] { return work->done(); }, world_ranks(), what, timeout_seconds());
  work->wait();  // done: returns at once, or rethrows the backend's error
}

std::vector<double> Communicator::all_reduce_sum(std::vector<double> values) {
  // Gathered and summed on the host in rank order: the same bits on every rank and every
  // backend (NCCL reduces only device tensors), whatever the reduction tree.
  const int64_t k = static_cast<int64_t>(values.size());
  auto mine = torch::tensor(values, torch::kFloat64);
  auto all = torch::empty({k * size()}, torch::kFloat64);
  all_gather_cpu(mine, all);
  const double* p = all.data_ptr<double>();
  std::vector<double> out(values.size(), 0.0);
  for (int r = 0; r < size(); ++r)
    for (int64_t i = 0; i < k; ++i) out[i] += p[r * k + i];
  return out;
}

double Communicator::all_reduce_max(double value) {
  double best = value;
  for (double v : all_gather(value)) best = std::max(best, v);
  return best;
}

std::vector<double> Communicator::all_gather(double value) {
  auto mine = torch::tensor({value}, torch::kFloat64);
  auto all = torch::empty({size()}, torch::kFloat64);
  all_gather_cpu(mine, all);
  const double* p = all.data_ptr<double>();
  return std::vector<double>(p, p + size());
}

std::vector<std::string> Communicator::all_gather_string(const std::string& value) {
  int64_t longest = 0;
  for (double len : all_gather(static_cast<double>(value.size()))) {
    longest = std::max(longest, static_cast<int64_t>(len));
  }
  // Fixed-size slots of the longest length; each string's length travels in its first 8 bytes.
  const int64_t slot = longest + 8;
  auto mine = torch::zeros({slot}, torch::kUInt8);
  const int64_t len = static_cast<int64_t>(value.size());
  std::memcpy(mine.data_ptr<uint8_t>(), &len, 8);
  std::memcpy(mine.data_ptr<uint8_t>() + 8, value.data(), value.size());
  auto all = torch::empty({slot * size()}, torch::kUInt8);
  all_gather_cpu(mine, all);
  std::vector<std::string> out;
  const uint8_t* p = all.data_ptr<uint8_t>();
  for (int r = 0; r < size(); ++r) {
    int64_t n = 0;
    std::memcpy(&n, p + r * slot, 8);
    out.emplace_back(reinterpret_cast<const char*>(p + r * slot + 8), static_cast<size_t>(n));
  }
  return out;
}

}  // namespace agave::cluster
