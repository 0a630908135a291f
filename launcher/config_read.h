#pragma once
// Reading one configuration tree into a Config: every key of launcher/config_table.h with its
// type and range, then the defaults that follow other keys and the checks across keys.
#include <yaml-cpp/yaml.h>

#include "launcher/config.h"
#include "launcher/yaml_reader.h"

namespace agave::launcher {

// Throws ConfigError naming where each value came from (`origins`: file lines, --set, sweep
// points), the key and what is allowed.
Config read_config(const YAML::Node& root, const Origins& origins);

}  // namespace agave::launcher
