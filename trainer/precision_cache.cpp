#include "trainer/precision_cache.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"

namespace agave::trainer {
namespace {

// The file's entries object; empty when the file is absent, unreadable or not of this form.
nlohmann::json read_entries(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return nlohmann::json::object();
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("entries") || !j["entries"].is_object()) {
    return nlohmann::json::object();
  }
  return j["entries"];
}

bool positive_number(const nlohmann::json& entry, const char* field) {
  return entry.contains(field) && entry[field].is_number() && entry[field].get<double>() > 0;
}

}  // namespace

std::optional<std::filesystem::path> PrecisionCache::default_file() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::filesystem::path root;
  if (xdg != nullptr && *xdg != '\0') {
    root = xdg;
  } else if (home != nullptr && *home != '\0') {
    root = std::filesystem::path(home) / ".cache";
  } else {
    return std::nullopt;
  }
  return root / "agave" / "precision.json";
}

std::optional<ProbeTimes> PrecisionCache::find(const std::string& key) const {
  const auto entries = read_entries(file_);
  if (!entries.contains(key)) return std::nullopt;
  const auto& e = entries[key];
  if (!e.is_object() || !positive_number(e, "fp32_ms") || !positive_number(e, "bf16_ms")) {
    return std::nullopt;
  }
  return ProbeTimes{e["fp32_ms"].get<double>(), e["bf16_ms"].get<double>(), /*cached=*/true};
}

void PrecisionCache::store(const std::string& key, const ProbeTimes& times) const {
  auto entries = read_entries(file_);
  entries[key] = {{"fp32_ms", times.fp32_ms}, {"bf16_ms", times.bf16_ms}};
  std::error_code ec;
  std::filesystem::create_directories(file_.parent_path(), ec);  // the write names the failure
  const nlohmann::json j = {{"entries", entries}};
  io::write_file_atomically(file_.string(), j.dump(2) + "\n");
}

}  // namespace agave::trainer
