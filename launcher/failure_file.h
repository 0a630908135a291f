#pragma once
// The trainer's half of elastic/failure_report.h: on a collective timeout the rank that saw it
// writes who did not answer to $AGAVE_FAILURE_DIR/failure-rank-N.json (agave_elastic sets the
// folder per generation), so the supervisor drops those hosts without trusting mpirun's code.
#include <string>

namespace agave::launcher {

// Writes this rank's report of `timeout_line` (cluster's stall report) atomically when
// $AGAVE_FAILURE_DIR is set; a warning line if it cannot. For the timeout handler: never throws.
void record_failure(const std::string& timeout_line);

}  // namespace agave::launcher
