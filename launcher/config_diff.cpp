#include "launcher/config_diff.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "launcher/config_error.h"

namespace agave::launcher {
namespace {

// One changed key: its dotted path, the line that reports it, and whether only one side has it.
struct Change {
  std::string path;
  std::string line;
  bool one_sided = false;
};

// A node as one line: scalars as written, anything else in YAML flow style.
std::string text(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "(none)";
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << n;
  return out.c_str();
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// The element names of a list of mappings that all have a scalar `name` (train.phases); empty
// when the list is anything else, then compared as a whole.
std::vector<std::string> element_names(const YAML::Node& list) {
  std::vector<std::string> names;
  for (const auto& e : list) {
    if (!e.IsMap() || !e["name"] || !e["name"].IsScalar()) return {};
    names.push_back(e["name"].Scalar());
  }
  // Two elements of one name cannot be told apart by name.
  if (std::set<std::string>(names.begin(), names.end()).size() != names.size()) return {};
  return names;
}

YAML::Node element_named(const YAML::Node& list, const std::string& name) {
  for (const auto& e : list) {
    if (e["name"].Scalar() == name) return e;
  }
  return YAML::Node();
}

void diff(const YAML::Node& before, const YAML::Node& after, const std::string& path,
          std::vector<Change>& out);

// 0.9 and 0.90000000000000002 are one double: a config written by a build that printed floats
// longer is not a change.
bool same_number(const YAML::Node& a, const YAML::Node& b) {
  if (!a.IsDefined() || !b.IsDefined() || !a.IsScalar() || !b.IsScalar()) return false;
  auto number = [](const std::string& s, double& v) {
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size();
  };
  double x = 0, y = 0;
  return number(a.Scalar(), x) && number(b.Scalar(), y) && x == y;
}

void diff_maps(const YAML::Node& before, const YAML::Node& after, const std::string& path,
               std::vector<Change>& out) {
  std::vector<std::string> keys;
  for (const auto& kv : after) keys.push_back(kv.first.Scalar());
  for (const auto& kv : before) {
    const std::string k = kv.first.Scalar();
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  for (const auto& k : keys) diff(before[k], after[k], join(path, k), out);
}

void diff_named_lists(const YAML::Node& before, const YAML::Node& after,
                      const std::vector<std::string>& had, const std::vector<std::string>& has,
                      const std::string& path, std::vector<Change>& out) {
  auto in = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  std::vector<std::string> kept_before, kept_after;
  for (const auto& n : had) {
    if (!in(has, n)) out.push_back({path, path + " -" + n});
    if (in(has, n)) kept_before.push_back(n);
  }
  for (const auto& n : has) {
    if (!in(had, n)) out.push_back({path, path + " +" + n});
    if (in(had, n)) kept_after.push_back(n);
  }
  if (kept_before != kept_after) {
    out.push_back({path, path + " order " + text(YAML::Node(kept_before)) + " → " +
                             text(YAML::Node(kept_after))});
  }
  for (const auto& n : kept_after) {
    diff(element_named(before, n), element_named(after, n), join(path, n), out);
  }
}

void diff(const YAML::Node& before, const YAML::Node& after, const std::string& path,
          std::vector<Change>& out) {
  const bool had = before.IsDefined() && !before.IsNull();
  const bool has = after.IsDefined() && !after.IsNull();
  if (had && has && before.IsMap() && after.IsMap()) return diff_maps(before, after, path, out);
  if (had && has && before.IsSequence() && after.IsSequence()) {
    const auto names_before = element_names(before), names_after = element_names(after);
    if (!names_before.empty() && !names_after.empty()) {
      return diff_named_lists(before, after, names_before, names_after, path, out);
    }
  }
  const std::string was = text(before), is = text(after);
  if (was != is && !same_number(before, after)) {
    out.push_back({path, path + " " + was + " → " + is, had != has});
  }
}

YAML::Node parse(const std::string& yaml, const char* which) {
  try {
    return YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(which) + " config is not valid YAML: " + e.msg);
  }
}

std::vector<Change> changes_of(const YAML::Node& before, const YAML::Node& after) {
  std::vector<Change> out;
  diff(before, after, "", out);
  return out;
}

// The keys whose change alters what a run trains (docs/run-folder.md): a key is one of these
// when its path is one of them or lies under one. train.phases and train.steps are decided
// by the schedule itself (below).
const std::vector<std::string> kResultKeys = {"run.seed",
                                              "data.dataset",
                                              "data.shuffle",
                                              "model",
                                              "aux",
                                              "loss",
                                              "train.batch_size",
                                              "train.optimizer",
                                              "train.grad_clip",
                                              "train.ema_decay",
                                              "train.ema_warmup",
                                              "train.precision",
                                              "train.pretrain"};

bool under(const std::string& path, const std::string& key) {
  return path == key || (path.size() > key.size() && path.compare(0, key.size(), key) == 0 &&
                         path[key.size()] == '.');
}

// The schedule up to `step`: each phase that began before it, as written, with its steps cut
// at `step`. Two configs that agree on it train the same steps so far; what comes later is
// the run's future, free to change.
std::vector<std::string> schedule_before(const YAML::Node& config, int64_t step) {
  std::vector<std::string> out;
  const auto phases = config["train"] ? config["train"]["phases"] : YAML::Node();
  if (!phases || !phases.IsSequence()) return {text(phases)};
  int64_t start = 0;
  for (const auto& p : phases) {
    if (start >= step) break;
    YAML::Node cut = YAML::Clone(p);
    const int64_t steps = p["steps"] ? p["steps"].as<int64_t>(0) : 0;
    cut["steps"] = std::min(steps, step - start);
    out.push_back(text(cut));
    start += steps;
  }
  return out;
}

}  // namespace

std::vector<std::string> config_changes(const std::string& before, const std::string& after) {
  std::vector<std::string> out;
  for (auto& c : changes_of(parse(before, "the saved"), parse(after, "the current"))) {
    out.push_back(std::move(c.line));
  }
  return out;
}

trainer::ConfigDrift config_drift(const std::string& recorded, const std::string& current,
                                  int64_t step) {
  const auto before = parse(recorded, "the run's"), after = parse(current, "the current");
  const bool schedule_kept = schedule_before(before, step) == schedule_before(after, step);
  trainer::ConfigDrift drift;
  for (auto& c : changes_of(before, after)) {
    const bool of_schedule = under(c.path, "train.phases") || under(c.path, "train.steps");
    // A key only one side has outside the schedule is a key added or dropped by another build
    // (configs are written whole): the checkpoint's model signature guards the architecture,
    // and refusing it would strand every run across an upgrade.
    const bool result =
        of_schedule ? !schedule_kept
                    : !c.one_sided &&
                          std::any_of(kResultKeys.begin(), kResultKeys.end(),
                                      [&](const std::string& key) { return under(c.path, key); });
    (result ? drift.result : drift.other).push_back(std::move(c.line));
  }
  return drift;
}

std::string describe_config_changes(const std::string& before, const std::string& after) {
  try {
    std::string line;
    for (const auto& c : config_changes(before, after)) line += (line.empty() ? "" : ", ") + c;
    return line;
  } catch (const ConfigError& e) {
    return e.what();
  }
}

}  // namespace agave::launcher
