#pragma once
// The per-run metrics log: one JSON object per line (a logged step, an evaluation, an event),
// appended and flushed line by line so a killed run keeps everything it logged.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace agave::monitoring {

class MetricsLog {
 public:
  // Appends to `path` (created if missing); throws naming the path when it cannot be opened.
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Writes `record` as one line; adds "time" (Unix seconds) when absent.
  void write(nlohmann::json record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace agave::monitoring
