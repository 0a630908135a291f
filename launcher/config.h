#pragma once
// The whole configuration of one training run, as typed option structs that live beside what
// they configure, plus the sweep that turns one file into many runs.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cluster/options.h"
#include "data/options.h"
#include "model/options.h"
#include "monitoring/options.h"
#include "trainer/options.h"

namespace agave::launcher {

struct RunOptions {
  std::string name = "agave";
  std::string output_dir = "runs";  // runs land in <output_dir>/<name>[/<sweep point>]
  int64_t seed = 1;
};

struct SweepAxis {
  std::string key;                  // dotted config path, e.g. loss.lambda
  std::vector<YAML::Node> values;   // as written in the file (keeps line numbers)
};

struct SweepOptions {
  int64_t ranks_per_run = 0;  // 0: every rank of the job trains each run together
  std::vector<SweepAxis> grid;
};

struct Config {
  RunOptions run;
  data::DataOptions data;
  model::AgaveOptions model;
  trainer::LossOptions loss;
  trainer::TrainOptions train;
  trainer::EvalOptions eval;
  trainer::CheckpointOptions checkpoint;
  monitoring::MonitoringOptions monitoring;
  cluster::ClusterOptions cluster;
  SweepOptions sweep;
};

// One point of a sweep (or the single run of a file without one), fully resolved.
struct RunSpec {
  std::string name;        // deterministic: "lambda=12,aux_resolution=16,color_bins=32"
  std::string output_dir;  // <run.output_dir>/<run.name>[/<name>]
  std::map<std::string, std::string> labels;  // the sweep values of this run, by label
  Config config;
};

// Reads `file`, applies `overrides` ("a.b=value", YAML values), expands the sweep and validates
// every run. Throws ConfigError with a one-line message naming file:line or the override.
std::vector<RunSpec> load_runs(const std::string& file, const std::vector<std::string>& overrides);

// Parses and validates one configuration tree (no sweep expansion).
Config parse_config(const YAML::Node& root, const std::string& file);

// The resolved configuration as YAML; parse_config(to_yaml(c)) == c for every valid c.
YAML::Node to_yaml(const Config& config);
std::string to_yaml_string(const Config& config);

}  // namespace agave::launcher
