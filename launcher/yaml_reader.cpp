#include "launcher/yaml_reader.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace agave::launcher {

namespace {

std::string bound_text(double v, bool integer) {
  if (integer && std::fabs(v) < 9e18) return std::to_string(static_cast<int64_t>(v));
  if (integer) return "9223372036854775807";
  std::string s = std::to_string(v);
  // "0.002000" -> "0.002", "1.000000" -> "1"
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

bool NumericRange::contains(double v) const {
  return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
}

std::string NumericRange::text(bool integer) const {
  return std::string(lo_open ? "(" : "[") + bound_text(lo, integer) + ", " +
         bound_text(hi, integer) + (hi_open ? ")" : "]");
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

const std::string* Origins::override_of(const std::string& path) const {
  // The longest override prefix of `path` wins: `--set model.vae.depth=3` covers that key,
  // `--set model.vae={...}` covers everything below model.vae.
  const std::string* best = nullptr;
  size_t best_len = 0;
  for (const auto& [p, what] : overrides_) {
    const bool covers = path == p || (path.size() > p.size() && path.compare(0, p.size(), p) == 0 &&
                                      path[p.size()] == '.');
    if (covers && p.size() >= best_len) {
      best = &what;
      best_len = p.size();
    }
  }
  return best;
}

std::string Origins::describe(const std::string& path, const YAML::Node& node) const {
  if (const std::string* what = override_of(path)) return *what;
  if (node.IsDefined() && node.Mark().line >= 0) {
    return file_ + ":" + std::to_string(node.Mark().line + 1);
  }
  return file_;
}

YamlReader::YamlReader(YAML::Node node, std::string path, const Origins& origins)
    : node_(node), path_(std::move(path)), origins_(origins) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    throw ConfigError(origins_.describe(path_, node_) + ": " + path_ +
                      ": expected a mapping of keys, got " +
                      (node_.IsSequence() ? "a list" : "'" + node_.Scalar() + "'"));
  }
}

std::string YamlReader::key_path(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
}

bool YamlReader::has(const char* key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

void YamlReader::fail(const char* key, const std::string& message) const {
  YAML::Node at = node_.IsMap() && node_[key].IsDefined() ? node_[key] : node_;
  fail_node(at, key, message);
}

void YamlReader::fail_node(const YAML::Node& node, const std::string& sub_path,
                           const std::string& message) const {
  const std::string full = key_path(sub_path.c_str());
  throw ConfigError(origins_.describe(full, node) + ": " + full + ": " + message);
}

// A key written without a value (`lambda:`, `lambda: null`, `lambda: ~`) is a mistake, not a
// request for the default: it is refused by name (remove the key to get the default).
void YamlReader::refuse_null(const char* key) const {
  if (node_.IsMap() && node_[key].IsDefined() && node_[key].IsNull()) {
    fail(key, "has no value (null); give a value, or remove the key to use the default");
  }
}

void YamlReader::check_range(const char* key, const NumericRange& range, double value, bool integer,
                             const std::string& shown) {
  if (!range.contains(value)) fail(key, "must be in " + range.text(integer) + ", got " + shown);
}

YAML::Node YamlReader::scalar(const char* key, const char* expected) {
  known_.emplace_back(key);
  refuse_null(key);
  if (!has(key)) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node v = node_[key];
  if (!v.IsScalar())
    fail(key,
         std::string("expected ") + expected + ", got a " + (v.IsSequence() ? "list" : "mapping"));
  return v;
}

void YamlReader::read(const char* key, double& out, const NumericRange& range) {
  YAML::Node v = scalar(key, "a number");
  if (!v.IsDefined()) return;
  double d;
  if (!YAML::convert<double>::decode(v, d) || !std::isfinite(d)) {
    fail(key, "expected a finite number, got '" + v.Scalar() + "'");
  }
  check_range(key, range, d, false, v.Scalar());
  out = d;
}

void YamlReader::read(const char* key, int64_t& out, const NumericRange& range) {
  YAML::Node v = scalar(key, "an integer");
  if (!v.IsDefined()) return;
  int64_t i;
  // yaml-cpp accepts "2.0" for integers on some versions; insist on an integer literal.
  if (v.Scalar().find_first_of(".eE") != std::string::npos ||
      !YAML::convert<int64_t>::decode(v, i)) {
    fail(key, "expected an integer, got '" + v.Scalar() + "'");
  }
  check_range(key, range, static_cast<double>(i), true, std::to_string(i));
  out = i;
}

void YamlReader::read(const char* key, bool& out) {
  YAML::Node v = scalar(key, "true or false");
  if (!v.IsDefined()) return;
  bool b;
  if (!YAML::convert<bool>::decode(v, b))
    fail(key, "expected true or false, got '" + v.Scalar() + "'");
  out = b;
}

void YamlReader::read(const char* key, std::string& out) {
  YAML::Node v = scalar(key, "a string");
  if (!v.IsDefined()) return;
  if (v.Scalar().empty()) {
    fail(key, "is empty; give a value, or remove the key to use the default");
  }
  out = v.Scalar();
}

YamlReader YamlReader::child(const char* key) {
  known_.emplace_back(key);
  refuse_null(key);
  YAML::Node v = node_.IsMap() ? node_[key] : YAML::Node();
  return YamlReader(v, key_path(key), origins_);
}

YAML::Node YamlReader::raw(const char* key) {
  known_.emplace_back(key);
  refuse_null(key);
  if (!node_.IsMap()) return YAML::Node();
  return node_[key];
}

void YamlReader::finish() const {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string k = kv.first.Scalar();
    if (std::find(known_.begin(), known_.end(), k) == known_.end()) {
      fail_node(kv.first, k, "unknown key; allowed keys here: " + join(known_, ", "));
    }
  }
}

}  // namespace agave::launcher
