#include "launcher/sweep_plan.h"

#include <sstream>

#include "launcher/config_error.h"

namespace agave::launcher {

SweepPlan plan_sweep(const std::vector<RunSpec>& runs, int world_size) {
  if (runs.empty()) throw ConfigError("no runs to plan");
  if (world_size < 1) throw ConfigError("the job has no ranks");
  SweepPlan plan;
  plan.world_size = world_size;
  const int64_t requested = runs.front().config.sweep.ranks_per_run;
  plan.ranks_per_run = requested > 0 ? static_cast<int>(requested) : world_size;
  if (plan.ranks_per_run > world_size || world_size % plan.ranks_per_run != 0) {
    throw ConfigError("sweep.ranks_per_run = " + std::to_string(plan.ranks_per_run) +
                      " does not divide the " + std::to_string(world_size) +
                      " ranks of this job; start a multiple of it (mpirun -np N)");
  }
  for (const auto& r : runs) {
    if (r.config.train.batch_size % plan.ranks_per_run != 0) {
      throw ConfigError("run " + r.name + ": train.batch_size = " +
                        std::to_string(r.config.train.batch_size) +
                        " must be divisible by the " + std::to_string(plan.ranks_per_run) +
                        " ranks that train it");
    }
  }
  const int n_groups = world_size / plan.ranks_per_run;
  for (int g = 0; g < n_groups; ++g) {
    RankGroup group{g, g * plan.ranks_per_run, plan.ranks_per_run, {}};
    for (size_t i = static_cast<size_t>(g); i < runs.size(); i += n_groups) group.runs.push_back(i);
    plan.groups.push_back(group);
  }
  return plan;
}

std::string describe_plan(const SweepPlan& plan, const std::vector<RunSpec>& runs) {
  std::ostringstream out;
  out << "plan: " << runs.size() << " run(s) on " << plan.world_size << " rank(s), "
      << plan.groups.size() << " group(s) of " << plan.ranks_per_run << "\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RankGroup& g = plan.groups[i % plan.groups.size()];
    const auto& c = runs[i].config;
    out << "run " << i << ": " << runs[i].name << "  ranks " << g.first_rank << "-"
        << g.first_rank + g.size - 1 << " (group " << g.index << ")"
        << "  steps " << c.train.steps << "  batch " << c.train.batch_size << " ("
        << c.train.batch_size / g.size << "/rank)"
        << "  output " << runs[i].output_dir << "\n";
  }
  for (const auto& g : plan.groups) {
    if (g.runs.empty()) out << "group " << g.index << ": idle (more groups than runs)\n";
  }
  return out.str();
}

}  // namespace agave::launcher
