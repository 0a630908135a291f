#pragma once
// Which ranks train which runs: the world is cut into groups of `ranks_per_run` consecutive
// ranks, and group g trains runs g, g + G, g + 2G, ... one after another.
#include <cstdint>
#include <string>
#include <vector>

#include "launcher/config.h"

namespace agave::launcher {

struct RankGroup {
  int index = 0;
  int first_rank = 0;
  int size = 0;
  std::vector<size_t> runs;  // indices into the run list, in the order the group trains them
};

struct SweepPlan {
  int world_size = 1;
  int ranks_per_run = 1;
  std::vector<RankGroup> groups;

  int group_of(int world_rank) const { return world_rank / ranks_per_run; }
};

// Why a global batch of `batch` images cannot be split evenly over `ranks` ranks (each rank
// takes an equal share): "must be divisible by ...", or "" when it can. The one rule that
// parse_config (sweep.ranks_per_run) and plan_sweep (the job's ranks) check.
std::string batch_split_problem(int64_t batch, int64_t ranks);

// Throws ConfigError when the job's rank count does not fit the sweep (ranks_per_run must
// divide it, and each run's global batch must split evenly over its ranks).
SweepPlan plan_sweep(const std::vector<RunSpec>& runs, int world_size);
// The same for a lazily expanded sweep: its size, and the batch sizes its axes can give.
SweepPlan plan_sweep(const Sweep& sweep, int world_size);

// The plan as text: one line per run (name, ranks, output folder) and a line per idle group.
std::string describe_plan(const SweepPlan& plan, const std::vector<RunSpec>& runs);

}  // namespace agave::launcher
