#include "cluster/communicator.h"

namespace agave::cluster {

std::vector<double> Communicator::all_reduce_sum(std::vector<double> values) {
  auto t = torch::tensor(values, torch::kFloat64);
  all_reduce(t);
  const double* p = t.data_ptr<double>();
  return std::vector<double>(p, p + values.size());
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

}  // namespace agave::cluster
