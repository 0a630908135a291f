#pragma once
// Reading one configuration tree into a Config: every key of launcher/config_table.h with its
// type and range, then the defaults that follow other keys and the checks across keys.
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "launcher/config.h"
#include "launcher/yaml_reader.h"

namespace agave::launcher {

// Throws ConfigError naming where each value came from (`origins`: file lines, --set, sweep
// points), the key and what is allowed. `notes` gets one line for each value the reading
// changed (train.steps scaling the phases).
Config read_config(const YAML::Node& root, const Origins& origins,
                   std::vector<std::string>* notes = nullptr);

}  // namespace agave::launcher
