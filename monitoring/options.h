#pragma once
// Typed options of monitoring (YAML section `monitoring`).
#include <cstdint>
#include <string>

namespace agave::monitoring {

// Where training progress shows: a bar with ETA on stderr (kBar; kAuto picks it on a terminal
// outside CI), step lines only (kPlain), or nothing but the step lines' log files (kOff).
enum class ProgressMode { kAuto, kBar, kPlain, kOff };

inline const char* progress_mode_name(ProgressMode m) {
  switch (m) {
    case ProgressMode::kBar:
      return "bar";
    case ProgressMode::kPlain:
      return "plain";
    case ProgressMode::kOff:
      return "off";
    default:
      return "auto";
  }
}

struct MonitoringOptions {
  bool prometheus = true;          // expose /metrics for Prometheus
  std::string bind = "127.0.0.1";  // 0.0.0.0 on clusters where Prometheus runs elsewhere
  int64_t port = 9464;
  bool next_free_port = false;  // take the next free port when `port` is in use
  bool every_rank = false;      // one exporter per rank instead of one per node
  int64_t log_every = 10;       // steps between metric log lines
  bool jsonl = true;            // per-run metrics.jsonl
  ProgressMode progress = ProgressMode::kAuto;
  int64_t profile_steps = 0;  // profile this many steps on rank 0 (chrome trace); 0 = off
  double linger_seconds = 0;  // keep /metrics up this long after a run (final scrape)
};

}  // namespace agave::monitoring
