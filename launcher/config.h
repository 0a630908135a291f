#pragma once
// The whole configuration of one training run, as typed option structs that live beside what
// they configure, plus the sweep that turns one file into many runs.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <memory>
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
  std::string key;                 // dotted config path, e.g. loss.lambda
  std::vector<YAML::Node> values;  // as written in the file (keeps line numbers)
};

// The most points (runs) a sweep grid may have (docs/configuration.md); a larger grid is
// refused before it is expanded.
inline constexpr int64_t kMaxSweepPoints = 10000;

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

// The largest config file read (1 MiB).
inline constexpr uint64_t kMaxConfigBytes = uint64_t{1} << 20;

// The runs of a config file: a sweep's points are expanded (and fully validated) one at a time,
// when asked for, so a rank expands only the points it trains. Loading validates the base
// config, the grid's size and every value of every axis (in the points that differ from point
// 0 in one axis), so a bad value fails on every rank before anything starts.
class Sweep {
 public:
  struct State;
  Sweep() = default;
  // One run, already expanded (--sweep-point), with the notes of the sweep it came from.
  explicit Sweep(RunSpec only, std::vector<std::string> notes = {});

  size_t size() const;
  RunSpec point(size_t i) const;  // ConfigError for an invalid combination of values
  const RunSpec& first() const { return first_; }
  std::vector<RunSpec> all() const;  // every point, in order (dry run, --print-config)
  // The global batch sizes among the points, each with a point that has it (plan_sweep).
  const std::vector<std::pair<std::string, int64_t>>& batch_sizes() const { return batch_sizes_; }
  // One line for each value the reading changed (train.steps scaling the phases), for the
  // launcher to print once.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  friend Sweep load_sweep(const std::string&, const std::vector<std::string>&);
  std::shared_ptr<const State> state_;
  std::shared_ptr<const RunSpec> only_;
  RunSpec first_;
  std::vector<std::pair<std::string, int64_t>> batch_sizes_;
  std::vector<std::string> notes_;
};

// Reads `file` and applies `overrides` ("a.b=value", YAML values). Throws ConfigError with a
// one-line message naming file:line or the override.
Sweep load_sweep(const std::string& file, const std::vector<std::string>& overrides);

// load_sweep(...).all(): every run expanded and validated.
std::vector<RunSpec> load_runs(const std::string& file, const std::vector<std::string>& overrides);

// Parses and validates one configuration tree (no sweep expansion).
Config parse_config(const YAML::Node& root, const std::string& file);

// The resolved configuration as YAML; parse_config(to_yaml(c)) == c for every valid c.
YAML::Node to_yaml(const Config& config);
std::string to_yaml_string(const Config& config);

}  // namespace agave::launcher
