#include "launcher/failure_file.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cluster/activity.h"
#include "cluster/job_channel.h"
#include "elastic/failure_report.h"
#include "io/atomic_file.h"

namespace agave::launcher {
namespace {
constexpr std::chrono::milliseconds kPeerReportWindow{1000};
}  // namespace

void record_failure(const std::string& timeout_line) {
  const char* dir = std::getenv(elastic::kFailureDirVariable);
  if (dir == nullptr || *dir == '\0') return;
  try {
    const auto* channel = cluster::JobChannel::current();
    const int self = channel ? channel->rank() : 0;
    auto report = elastic::failure_from_timeout_line(timeout_line, self);
    report.reporter = self;
    report.step = cluster::current_activity().step;
    const auto file = std::filesystem::path(dir) / elastic::failure_file_name(self);
    io::write_file_atomically(file.string(), elastic::to_json(report));
    // The peers that timed out in the same collective are writing theirs now; this rank's
    // MPI_Abort, next, would kill them first, and the supervisor's vote needs their reports.
    std::this_thread::sleep_for(kPeerReportWindow);
  } catch (const std::exception& e) {
    std::cerr << "agave_trainer: warning: " << elastic::kFailureDirVariable << ": " << e.what()
              << std::endl;
  }
}

}  // namespace agave::launcher
