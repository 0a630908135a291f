#include "launcher/config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "launcher/config_read.h"
#include "launcher/yaml_reader.h"
#include "monitoring/paper_axes.h"

namespace agave::launcher {
namespace {

// ---- overrides and sweeps ------------------------------------------------------------------

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  return parts;
}

// Sets `value` at a dotted `path`, creating mappings on the way.
void set_path(YAML::Node root, const std::string& path, const YAML::Node& value,
              const std::string& what) {
  const auto parts = split_path(path);
  for (const auto& p : parts) {
    if (p.empty()) throw ConfigError(what + ": '" + path + "' is not a key path like loss.lambda");
  }
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[parts[i]];
    } else if (!next.IsMap()) {
      throw ConfigError(what + ": " + join({parts.begin(), parts.begin() + i + 1}, ".") +
                        " is a value, not a section");
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;
}

YAML::Node load_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(file + ": cannot read the config file");
  // A config is a few KiB; a huge file is a mistake (or hostile) and would only cost memory.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(file, ec);
  if (!ec && bytes > kMaxConfigBytes) {
    throw ConfigError(file + ": the config file is " + std::to_string(bytes) + " bytes; at most " +
                      std::to_string(kMaxConfigBytes) + " allowed");
  }
  try {
    YAML::Node root = YAML::Load(in);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) {
      throw ConfigError(file + ":" + std::to_string(root.Mark().line + 1) +
                        ": expected a mapping of sections (run, data, model, ...) at the top");
    }
    return root;
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
  }
}

// The label of a swept key in run names: the names Prometheus labels and plots use for the
// paper's three axes, the last path component otherwise (the whole path where two collide).
std::string label_of(const std::string& key) {
  for (const auto& axis : monitoring::kPaperAxes) {
    if (key == axis.config_key) return axis.label;
  }
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

std::string short_key(const std::string& key, const std::vector<SweepAxis>& grid) {
  int same = 0;
  for (const auto& a : grid) same += label_of(a.key) == label_of(key);
  if (same <= 1) return label_of(key);
  std::string full = key;
  for (char& ch : full)
    if (ch == '.') ch = '_';
  return full;
}

std::string safe_value(std::string v) {
  for (char& ch : v)
    if (ch == '/' || ch == ' ' || ch == ',' || ch == '=') ch = '_';
  return v;
}

}  // namespace

Config parse_config(const YAML::Node& root, const std::string& file) {
  return read_config(root, Origins(file));
}

namespace {

// Point `i` of the grid as axis indices: the last axis varies fastest, so points follow the
// file's order.
std::vector<size_t> point_indices(const std::vector<SweepAxis>& grid, size_t i) {
  std::vector<size_t> index(grid.size(), 0);
  for (size_t a = grid.size(); a > 0; --a) {
    index[a - 1] = i % grid[a - 1].values.size();
    i /= grid[a - 1].values.size();
  }
  return index;
}

}  // namespace

struct Sweep::State {
  std::string file;
  YAML::Node root;
  Origins origins;
  Config base;
  std::string run_root;
  size_t points = 1;
  explicit State(const std::string& f) : file(f), origins(f) {}
};

Sweep::Sweep(RunSpec only, std::vector<std::string> notes)
    : only_(std::make_shared<RunSpec>(std::move(only))), notes_(std::move(notes)) {
  first_ = *only_;
  batch_sizes_ = {{first_.name, first_.config.train.batch_size}};
}

size_t Sweep::size() const { return only_ ? 1 : state_ ? state_->points : 0; }

RunSpec Sweep::point(size_t i) const {
  if (i >= size())
    throw std::out_of_range("sweep point " + std::to_string(i) + " of " + std::to_string(size()));
  if (only_) return *only_;
  const State& st = *state_;
  const auto& grid = st.base.sweep.grid;
  if (grid.empty()) return RunSpec{st.base.run.name, st.run_root, {}, st.base};
  const auto index = point_indices(grid, i);
  YAML::Node point = YAML::Clone(st.root);
  Origins point_origins = st.origins;
  std::vector<std::string> name_parts;
  std::map<std::string, std::string> point_labels;
  for (size_t a = 0; a < grid.size(); ++a) {
    const YAML::Node& v = grid[a].values[index[a]];
    const std::string label = short_key(grid[a].key, grid) + "=" + safe_value(v.Scalar());
    name_parts.push_back(label);
    point_labels[short_key(grid[a].key, grid)] = v.Scalar();
    set_path(point, grid[a].key, YAML::Clone(v),
             st.origins.describe("sweep.grid", v) + " (sweep " + label + ")");
    point_origins.mark(grid[a].key, st.file + ":" + std::to_string(v.Mark().line + 1) +
                                        " (sweep point " + label + ")");
  }
  RunSpec spec;
  spec.name = join(name_parts, ",");
  spec.labels = point_labels;
  spec.config = read_config(point, point_origins);
  spec.output_dir = st.run_root + "/" + spec.name;
  // One run, one folder: an explicit checkpoint folder is the sweep's, each point gets its own.
  auto& dir = spec.config.checkpoint.dir;
  if (!dir.empty()) dir += "/" + spec.name;
  return spec;
}

namespace {

size_t point_number(const std::vector<SweepAxis>& grid, const std::vector<size_t>& index) {
  size_t n = 0;
  for (size_t a = 0; a < grid.size(); ++a) n = n * grid[a].values.size() + index[a];
  return n;
}

// "3 {lambda: 2.0}": a point as the user wrote its values.
std::string describe_point(const std::vector<SweepAxis>& grid, const std::vector<size_t>& index) {
  std::string values;
  for (size_t a = 0; a < grid.size(); ++a) {
    values +=
        (a ? ", " : "") + short_key(grid[a].key, grid) + ": " + grid[a].values[index[a]].Scalar();
  }
  return std::to_string(point_number(grid, index)) + " {" + values + "}";
}

// One run, one folder, never outside run.output_dir: run.name is a plain folder name, no
// sweep value is empty, and no two points name the same folder. Point names join one
// "key=value" per axis, so two points collide exactly when some axis has two values that are
// equal once made folder names; checking each axis finds every collision without expanding
// the grid.
void check_run_folders(const Config& base, const std::string& run_root, const std::string& file) {
  const std::string& name = base.run.name;
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw ConfigError(file + ": run.name = '" + name +
                      "': must be a plain folder name (not empty, '.' or '..', no '/'), so the "
                      "run stays inside run.output_dir");
  }
  const auto& grid = base.sweep.grid;
  for (size_t a = 0; a < grid.size(); ++a) {
    std::map<std::string, size_t> first_of;
    for (size_t v = 0; v < grid[a].values.size(); ++v) {
      std::vector<size_t> index(grid.size(), 0);
      index[a] = v;
      const std::string value = grid[a].values[v].Scalar();
      if (value.empty()) {
        throw ConfigError(file + ": sweep point " + describe_point(grid, index) +
                          ": the value of " + short_key(grid[a].key, grid) +
                          " is empty; an empty value names no folder");
      }
      const auto [it, fresh] = first_of.emplace(safe_value(value), v);
      if (fresh) continue;
      std::vector<size_t> other = index;
      other[a] = it->second;
      const std::string folder = short_key(grid[a].key, grid) + "=" + safe_value(value);
      throw ConfigError(file + ": sweep points " + describe_point(grid, other) + " and " +
                        describe_point(grid, index) + " would both write to " + run_root + "/..." +
                        folder + "...; list each value once, with values that differ " +
                        "after '/', ' ', ',' and '=' become '_'");
    }
  }
}

}  // namespace

std::vector<RunSpec> Sweep::all() const {
  std::vector<RunSpec> runs;
  runs.reserve(size());
  for (size_t i = 0; i < size(); ++i) runs.push_back(point(i));
  return runs;
}

Sweep load_sweep(const std::string& file, const std::vector<std::string>& overrides) {
  auto st = std::make_shared<Sweep::State>(file);
  st->root = load_file(file);
  YAML::Node& root = st->root;
  Origins& origins = st->origins;
  std::set<std::string> overridden;
  for (const auto& o : overrides) {
    const std::string what = "--set " + o;
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError(what + ": expected key.path=value, e.g. --set loss.lambda=4");
    }
    const std::string path = o.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError(what + ": the value is not valid YAML: " + e.msg);
    }
    set_path(root, path, value, what);
    origins.mark(path, what);
    overridden.insert(path);
  }

  // Read once without expanding, to validate the sweep section (and its size) and the base.
  std::vector<std::string> notes;
  st->base = read_config(root, origins, &notes);
  const auto& grid = st->base.sweep.grid;
  for (const auto& axis : grid) {
    for (const auto& o : overridden) {
      if (o == axis.key || axis.key.rfind(o + ".", 0) == 0 || o.rfind(axis.key + ".", 0) == 0) {
        throw ConfigError("--set " + o + ": conflicts with the sweep over " + axis.key + " (" +
                          origins.describe("sweep.grid", axis.values.front()) +
                          "); change sweep.grid." + axis.key + " instead");
      }
    }
  }
  st->run_root = st->base.run.output_dir + "/" + st->base.run.name;
  check_run_folders(st->base, st->run_root, file);
  for (const auto& axis : grid) st->points *= axis.values.size();  // <= kMaxSweepPoints

  Sweep sweep;
  sweep.state_ = st;
  sweep.notes_ = std::move(notes);
  // Expansion is lazy (each rank expands the points it trains), but every value of every axis
  // is validated now, in a real point of the grid: the points that differ from point 0 in one
  // axis only. A bad value therefore stops the job here, before MPI starts, on every rank
  // alike; only a combination that is invalid while each of its values is valid elsewhere is
  // found when its point is expanded (and fails that run, exit code 2).
  sweep.first_ = sweep.point(0);
  sweep.batch_sizes_ = {{sweep.first_.name, sweep.first_.config.train.batch_size}};
  size_t stride = 1;
  for (size_t a = grid.size(); a > 0; --a) {
    for (size_t k = 1; k < grid[a - 1].values.size(); ++k) {
      const RunSpec spec = sweep.point(k * stride);
      sweep.batch_sizes_.emplace_back(spec.name, spec.config.train.batch_size);
    }
    stride *= grid[a - 1].values.size();
  }
  return sweep;
}

std::vector<RunSpec> load_runs(const std::string& file, const std::vector<std::string>& overrides) {
  return load_sweep(file, overrides).all();
}

}  // namespace agave::launcher
