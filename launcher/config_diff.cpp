#include "launcher/config_diff.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "launcher/config_error.h"

namespace agave::launcher {
namespace {

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
          std::vector<std::string>& out);

void diff_maps(const YAML::Node& before, const YAML::Node& after, const std::string& path,
               std::vector<std::string>& out) {
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
                      const std::string& path, std::vector<std::string>& out) {
  auto in = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  std::vector<std::string> kept_before, kept_after;
  for (const auto& n : had) {
    if (!in(has, n)) out.push_back(path + " -" + n);
    if (in(has, n)) kept_before.push_back(n);
  }
  for (const auto& n : has) {
    if (!in(had, n)) out.push_back(path + " +" + n);
    if (in(had, n)) kept_after.push_back(n);
  }
  if (kept_before != kept_after) {
    out.push_back(path + " order " + text(YAML::Node(kept_before)) + " → " +
                  text(YAML::Node(kept_after)));
  }
  for (const auto& n : kept_after) {
    diff(element_named(before, n), element_named(after, n), join(path, n), out);
  }
}

void diff(const YAML::Node& before, const YAML::Node& after, const std::string& path,
          std::vector<std::string>& out) {
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
  if (was != is) out.push_back(path + " " + was + " → " + is);
}

YAML::Node parse(const std::string& yaml, const char* which) {
  try {
    return YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(which) + " config is not valid YAML: " + e.msg);
  }
}

}  // namespace

std::vector<std::string> config_changes(const std::string& before, const std::string& after) {
  std::vector<std::string> out;
  diff(parse(before, "the saved"), parse(after, "the current"), "", out);
  return out;
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
