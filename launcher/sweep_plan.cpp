#include "launcher/sweep_plan.h"

#include <sstream>

#include "launcher/config_error.h"

namespace agave::launcher {

namespace {

// `count` runs of the given global batch sizes (each with the name of a run that has it) on
// `world_size` ranks in groups of `ranks_per_run` (0: all).
SweepPlan plan(size_t count, int64_t requested,
               const std::vector<std::pair<std::string, int64_t>>& batch_sizes, int world_size) {
  if (count == 0) throw ConfigError("no runs to plan");
  if (world_size < 1) throw ConfigError("the job has no ranks");
  SweepPlan plan;
  plan.world_size = world_size;
  plan.ranks_per_run = requested > 0 ? static_cast<int>(requested) : world_size;
  if (requested > world_size || plan.ranks_per_run > world_size ||
      world_size % plan.ranks_per_run != 0) {
    throw ConfigError("sweep.ranks_per_run = " + std::to_string(requested) +
                      " does not divide the " + std::to_string(world_size) +
                      " ranks of this job; start a multiple of it (mpirun -np N)");
  }
  for (const auto& [name, batch] : batch_sizes) {
    const std::string problem = batch_split_problem(batch, plan.ranks_per_run);
    if (!problem.empty()) {
      throw ConfigError("run " + name + ": train.batch_size = " + std::to_string(batch) + " " +
                        problem);
    }
  }
  const int n_groups = world_size / plan.ranks_per_run;
  for (int g = 0; g < n_groups; ++g) {
    RankGroup group{g, g * plan.ranks_per_run, plan.ranks_per_run, {}};
    for (size_t i = static_cast<size_t>(g); i < count; i += n_groups) group.runs.push_back(i);
    plan.groups.push_back(group);
  }
  return plan;
}

}  // namespace

std::string batch_split_problem(int64_t batch, int64_t ranks) {
  if (ranks >= 1 && batch % ranks == 0) return "";
  return "must be divisible by the " + std::to_string(ranks) + " ranks that train it";
}

SweepPlan plan_sweep(const std::vector<RunSpec>& runs, int world_size) {
  std::vector<std::pair<std::string, int64_t>> batches;
  for (const auto& r : runs) batches.emplace_back(r.name, r.config.train.batch_size);
  return plan(runs.size(), runs.empty() ? 0 : runs.front().config.sweep.ranks_per_run, batches,
              world_size);
}

SweepPlan plan_sweep(const Sweep& sweep, int world_size) {
  return plan(sweep.size(), sweep.size() ? sweep.first().config.sweep.ranks_per_run : 0,
              sweep.batch_sizes(), world_size);
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
        << "  seed " << c.run.seed << "  output " << runs[i].output_dir << "\n";
  }
  for (const auto& g : plan.groups) {
    if (g.runs.empty()) out << "group " << g.index << ": idle (more groups than runs)\n";
  }
  return out.str();
}

}  // namespace agave::launcher
