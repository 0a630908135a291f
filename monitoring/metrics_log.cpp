#include "monitoring/metrics_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace agave::monitoring {

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw std::runtime_error(path + ": cannot open the metrics log: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(nlohmann::json record) {
  if (!record.contains("time")) {
    record["time"] = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  }
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw std::runtime_error(path_ + ": cannot write the metrics log: " + std::strerror(errno));
  }
}

}  // namespace agave::monitoring
