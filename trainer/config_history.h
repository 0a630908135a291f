#pragma once
// A run folder is one config (docs/run-folder.md). <run>/config.yaml is the config the run
// trains with now; a resume whose config changes what the run has already trained is refused
// unless the change is asked for (--allow-config-change), and every change a resume takes is
// appended to <run>/config_history.jsonl with the config it replaced, so no config is ever
// overwritten silently. A finished run is never rewritten.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace agave::trainer {

// A resumed run's config against the one recorded for the run, one line per changed key
// ("loss.lambda 4 → 8"). The launcher, the side that reads YAML, sorts the lines.
struct ConfigDrift {
  std::vector<std::string> result;  // change what was trained or what the run means
  std::vector<std::string> other;   // evaluation, checkpoints, monitoring, paths, steps to come
  bool empty() const { return result.empty() && other.empty(); }
  std::vector<std::string> all() const {
    auto lines = result;
    lines.insert(lines.end(), other.begin(), other.end());
    return lines;
  }
};

// The lines joined by ", ", as a resume reports them.
std::string join_changes(const std::vector<std::string>& changes);

// A resume refused because its config would make the run folder mean two configs. Exit code 2
// (a user error); nothing of the run is written.
class ConfigDriftError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The refusal's one line: the differences and the two ways on.
std::string drift_refusal(const std::string& run_dir, int64_t step, const ConfigDrift& drift,
                          bool finished);

// One line of config_history.jsonl.
struct ConfigChangeRecord {
  int64_t step = 0;             // the first step trained with the new config
  ConfigDrift drift;            // what changed
  bool allowed = false;         // result changes taken with --allow-config-change
  std::string previous_config;  // the config.yaml it replaced, whole
};

// Appends `record` to <run_dir>/config_history.jsonl (created when missing) as one JSON line
// with its UTC time, flushed before returning. Throws naming the file when it cannot be written.
void append_config_history(const std::string& run_dir, const ConfigChangeRecord& record);

// "<run_dir>/config_history.jsonl".
std::string config_history_file(const std::string& run_dir);

// The text of a run's config.yaml; throws std::runtime_error naming the file when it is not a
// readable regular file (a config.yaml that cannot be read must not be skipped and overwritten).
std::string read_recorded_config(const std::string& path);

}  // namespace agave::trainer
