#pragma once
// The per-run metrics log: one JSON object per line (a logged step, an evaluation, an event),
// appended and flushed line by line so a killed run keeps everything it logged.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace agave::monitoring {

// "2026-12-07T12:04:10.123Z": ISO 8601 in UTC to the millisecond, the time of every metrics.jsonl
// line. Readable where the log is read (tail, jq, beside the step lines' own UTC stamps) and
// parsed by pandas.to_datetime and Python's datetime.fromisoformat (3.11+) alike.
std::string iso_utc(std::chrono::system_clock::time_point t);

class MetricsLog {
 public:
  // Appends to `path` (created if missing); throws naming the path when it cannot be opened.
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Writes `record` as one line, stamped with "time" (iso_utc of now; any "time" the record
  // carries is replaced, so every event of the log has the one format docs/metrics.md gives).
  void write(nlohmann::json record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace agave::monitoring
