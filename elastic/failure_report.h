#pragma once
// Failure reports: what each rank of a job that saw a peer fail tells the supervisor
// (agave_elastic) -- where it was, and which ranks and hosts did not answer -- so the supervisor
// excludes those hosts without trusting mpirun's exit code. Each rank that times out writes its
// own, atomically, to $AGAVE_FAILURE_DIR/failure-rank-N.json; the supervisor reads them all. One
// report could mislead: after a partition the cut-off rank names every other rank as silent.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agave::elastic {

inline constexpr const char* kFailureDirVariable = "AGAVE_FAILURE_DIR";

// "failure-rank-3.json".
std::string failure_file_name(int reporter);
// Whether `name` is one failure_file_name() makes: not the temporary file of a report being
// written (a rank killed mid-write leaves one behind), not anything else in the folder.
bool is_failure_file_name(const std::string& name);

struct FailureReport {
  int reporter = -1;       // the world rank that wrote it
  int64_t step = -1;       // -1: not known
  std::string collective;  // what the reporting rank waited in
  std::vector<int> ranks;  // world ranks that did not answer
  std::vector<std::string> hosts;
  std::string line;  // the reporting rank's own line
};

std::string to_json(const FailureReport& report);
// Throws std::invalid_argument naming what is wrong.
FailureReport parse_failure_report(const std::string& json);

// The ranks and hosts named `rank N (host)` in a collective timeout line (cluster's stall
// reports), in order, this rank (`self`) left out; the collective after "timeout: " or before
// " waited".
FailureReport failure_from_timeout_line(const std::string& line, int self);

// What the reports agree on: the ranks (and their hosts) that more than half of the reporting
// ranks named as silent; the step and collective of the first report. After a partition of
// {0, 1} from {2}, ranks 0 and 1 name 2, rank 2 names 0 and 1: rank 2 is the one excluded. An
// even split names nobody (the host discovery decides).
FailureReport agreed_failure(const std::vector<FailureReport>& reports);

}  // namespace agave::elastic
