#include "monitoring/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace agave::monitoring {

std::string iso_utc(std::chrono::system_clock::time_point t) {
  const auto whole = std::chrono::floor<std::chrono::seconds>(t);
  const std::time_t seconds = std::chrono::system_clock::to_time_t(whole);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(t - whole).count();
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(millis));
  return text;
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_)
    throw std::runtime_error(path + ": cannot open the metrics log: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(nlohmann::json record) {
  record["time"] = iso_utc(std::chrono::system_clock::now());
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw std::runtime_error(path_ + ": cannot write the metrics log: " + std::strerror(errno));
  }
}

}  // namespace agave::monitoring
