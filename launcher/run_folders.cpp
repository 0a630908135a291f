#include "launcher/run_folders.h"

#include <map>

#include "launcher/config_error.h"

namespace agave::launcher {
namespace {

// "{loss.lambda: 2, aux.color_bins: 32}": a point as the user wrote its values.
std::string point_values(const RunSpec& r) {
  std::string out;
  for (const auto& [key, value] : r.labels) out += (out.empty() ? "" : ", ") + key + ": " + value;
  return "{" + out + "}";
}

}  // namespace

void assign_run_folders(std::vector<RunSpec>& runs, const std::string& file) {
  if (runs.empty()) return;
  const std::string& name = runs.front().config.run.name;
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw ConfigError(file + ": run.name = '" + name +
                      "': must be a plain folder name (not empty, '.' or '..', no '/'), so the "
                      "run stays inside run.output_dir");
  }
  std::map<std::string, size_t> first_of;
  for (size_t i = 0; i < runs.size(); ++i) {
    for (const auto& [key, value] : runs[i].labels) {
      if (value.empty()) {
        throw ConfigError(file + ": sweep point " + std::to_string(i) + " " +
                          point_values(runs[i]) + ": the value of " + key +
                          " is empty; an empty value names no folder");
      }
    }
    const auto [it, fresh] = first_of.emplace(runs[i].output_dir, i);
    if (!fresh) {
      const size_t j = it->second;
      throw ConfigError(file + ": sweep points " + std::to_string(j) + " " + point_values(runs[j]) +
                        " and " + std::to_string(i) + " " + point_values(runs[i]) +
                        " would both write to " + runs[i].output_dir +
                        "; list each value once, with values that differ after '/', ' ', ',' "
                        "and '=' become '_'");
    }
  }
  for (auto& r : runs) {
    auto& dir = r.config.checkpoint.dir;
    if (!dir.empty() && !r.labels.empty()) dir += "/" + r.name;
  }
}

}  // namespace agave::launcher
