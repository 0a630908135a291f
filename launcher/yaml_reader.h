#pragma once
// Typed, strict reading of one YAML mapping: every key read is checked for type and range,
// and keys that were never asked for are reported as unknown with the allowed list.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "launcher/config_error.h"

namespace agave::launcher {

// Where a value came from, so an error can name it: a file (with the node's line) or an
// override such as `--set loss.lambda=3`.
class Origins {
 public:
  explicit Origins(std::string file) : file_(std::move(file)) {}
  // Values at `path` (and below it) came from `what` instead of the file.
  void mark(const std::string& path, const std::string& what) { overrides_[path] = what; }
  std::string describe(const std::string& path, const YAML::Node& node) const;
  // Whether `path` was set by an override or a sweep point rather than the file.
  bool overridden(const std::string& path) const { return override_of(path) != nullptr; }
  const std::string& file() const { return file_; }

 private:
  const std::string* override_of(const std::string& path) const;
  std::string file_;
  std::map<std::string, std::string> overrides_;
};

// The allowed values of a numeric key: [lo, hi], either end open. Every numeric key has one
// (its row in launcher/config_table.h, documented in docs/configuration.md).
struct NumericRange {
  double lo = 0, hi = 0;
  bool lo_open = false, hi_open = false;
  bool contains(double v) const;
  std::string text(bool integer) const;  // "[1, 65536]", "(0, 1]"
};

class YamlReader {
 public:
  // `node` must be a mapping (or null/absent, which reads as an empty mapping).
  YamlReader(YAML::Node node, std::string path, const Origins& origins);

  // Optional keys keep `out` (the default) when absent. Numbers must lie in `range`.
  void read(const char* key, double& out, const NumericRange& range);
  void read(const char* key, int64_t& out, const NumericRange& range);
  void read(const char* key, bool& out);
  void read(const char* key, std::string& out);
  // One of `allowed` (by name).
  template <typename E>
  void read_enum(const char* key, E& out, const std::vector<std::pair<std::string, E>>& allowed);

  // A nested mapping.
  YamlReader child(const char* key);
  // A raw node (absent → null) marked as known; for lists and free-form parts.
  YAML::Node raw(const char* key);

  bool has(const char* key) const;
  // Throws for the first key never read, listing the keys this section allows.
  void finish() const;

  // A one-line error about `key` in this section: "<where>: <path.key>: <message>".
  [[noreturn]] void fail(const char* key, const std::string& message) const;
  [[noreturn]] void fail_node(const YAML::Node& node, const std::string& sub_path,
                              const std::string& message) const;
  std::string key_path(const char* key) const;
  const Origins& origins() const { return origins_; }
  const std::string& path() const { return path_; }

 private:
  YAML::Node scalar(const char* key, const char* expected);
  void refuse_null(const char* key) const;
  // Fails unless the value lies in the key's documented range.
  void check_range(const char* key, const NumericRange& range, double value, bool integer,
                   const std::string& shown);

  YAML::Node node_;
  std::string path_;
  const Origins& origins_;
  std::vector<std::string> known_;
};

std::string join(const std::vector<std::string>& items, const std::string& sep);

template <typename E>
void YamlReader::read_enum(const char* key, E& out,
                           const std::vector<std::pair<std::string, E>>& allowed) {
  std::string name;
  bool present = has(key);
  read(key, name);
  if (!present) return;
  std::vector<std::string> names;
  for (const auto& [n, v] : allowed) {
    if (n == name) {
      out = v;
      return;
    }
    names.push_back(n);
  }
  fail(key, "'" + name + "' is not allowed; allowed: " + join(names, ", "));
}

}  // namespace agave::launcher
