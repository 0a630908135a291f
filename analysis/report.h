#pragma once
// A comparison (analysis/comparison.h) as people and programs read it: a markdown report, one
// long CSV of every number in it, and a wide CSV of each arm's means across seeds (one row per
// arm, `<column>` and `<column>_stderr`), which gnuplot plots against the arms.
#include <string>

#include "analysis/comparison.h"

namespace agave::analysis {

std::string markdown(const Comparison& c);

// table,arm,versus,seed,column,mean,stderr,n,min,max,agreeing,seeds. table: `mean` (arm, seed;
// n images), `arm` (an arm across seeds), `paired` (arm − versus, per seed; n images paired),
// `paired_seeds` (arm − versus across seeds: n seeds, min, max, agreeing).
std::string long_csv(const Comparison& c);

std::string arms_csv(const Comparison& c);

}  // namespace agave::analysis
