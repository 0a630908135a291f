#include "trainer/config_history.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "monitoring/metrics_log.h"

namespace agave::trainer {
std::string join_changes(const std::vector<std::string>& changes) {
  std::string out;
  for (const auto& c : changes) out += (out.empty() ? "" : ", ") + c;
  return out;
}

std::string config_history_file(const std::string& run_dir) {
  return run_dir + "/config_history.jsonl";
}

std::string drift_refusal(const std::string& run_dir, int64_t step, const ConfigDrift& drift,
                          bool finished) {
  const std::string what = run_dir + "/config.yaml differs from this config in what the run " +
                           "trained up to step " + std::to_string(step) + ": " +
                           join_changes(drift.result);
  if (finished) {
    return what + "; the run is finished and is not rewritten: --set run.name=NEW for a new " +
           "run with this config (or raise the steps and add --allow-config-change)";
  }
  return what + "; --set run.name=NEW for a new run with this config, or " +
         "--allow-config-change to continue this run with it (recorded in " +
         "config_history.jsonl)";
}

void append_config_history(const std::string& run_dir, const ConfigChangeRecord& record) {
  // Through MetricsLog: the same line discipline and time format as metrics.jsonl.
  monitoring::MetricsLog log(config_history_file(run_dir));
  log.write({{"event", "config_change"},
             {"step", record.step},
             {"result_changes", record.drift.result},
             {"other_changes", record.drift.other},
             {"allowed", record.allowed},
             {"previous_config", record.previous_config}});
}

std::string read_recorded_config(const std::string& path) {
  std::error_code ec;
  std::ifstream in(path);
  if (!std::filesystem::is_regular_file(path, ec) || !in) {
    throw std::runtime_error(path + ": cannot read the run's recorded config");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": cannot read the run's recorded config");
  return text.str();
}

}  // namespace agave::trainer
