#include "data/manifest.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/atomic_file.h"
#include "data/errors.h"

namespace agave::data {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Manifest::dir() const { return fs::path(path).parent_path().string(); }

std::string Manifest::shard_path(const ManifestShard& s) const {
  return (fs::path(path).parent_path() / s.file).string();
}

std::string manifest_path(const std::string& dir, const std::string& split) {
  return (fs::path(dir) / (split + ".manifest.json")).string();
}

Manifest read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::error_code ec;
    throw DataError(path, fs::exists(path, ec) ? std::string("cannot read: ") + std::strerror(errno)
                                               : "no such manifest");
  }
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw DataError(path, std::string("manifest is not valid JSON: ") + e.what());
  }
  Manifest m;
  m.path = path;
  try {
    if (j.at("format").get<std::string>() != kManifestFormat) {
      throw DataError(
          path, "not an agave shard manifest (format '" + j.at("format").get<std::string>() + "')");
    }
    m.dataset = j.at("dataset").get<std::string>();
    m.split = j.at("split").get<std::string>();
    m.source = j.value("source", "");
    m.count = j.at("count").get<int64_t>();
    const auto shape = j.at("image_shape").get<std::vector<int64_t>>();
    if (shape.size() != 3) throw DataError(path, "image_shape must hold 3 numbers");
    m.shape = ImageShape{shape[0], shape[1], shape[2]};
    for (const auto& s : j.at("shards")) {
      m.shards.push_back(
          ManifestShard{s.at("file").get<std::string>(), s.at("count").get<int64_t>(),
                        s.at("first_index").get<int64_t>(), s.at("sha256").get<std::string>()});
    }
  } catch (const json::exception& e) {
    throw DataError(path,
                    std::string("manifest is missing a field or has a wrong type: ") + e.what());
  }
  int64_t next = 0;
  for (const auto& s : m.shards) {
    if (s.count <= 0 || s.first_index != next) {
      throw DataError(path, "shard " + s.file + " has count " + std::to_string(s.count) +
                                " and first_index " + std::to_string(s.first_index) +
                                ", expected first_index " + std::to_string(next));
    }
    next += s.count;
  }
  if (next != m.count || m.shards.empty()) {
    throw DataError(path, "shard counts add up to " + std::to_string(next) + ", manifest says " +
                              std::to_string(m.count));
  }
  return m;
}

void write_manifest(const std::string& path, const Manifest& m) {
  json shards = json::array();
  for (const auto& s : m.shards) {
    shards.push_back({{"file", s.file},
                      {"count", s.count},
                      {"first_index", s.first_index},
                      {"sha256", s.sha256}});
  }
  json j = {{"format", kManifestFormat},
            {"format_version", 1},
            {"dataset", m.dataset},
            {"split", m.split},
            {"source", m.source},
            {"count", m.count},
            {"image_shape", {m.shape.channels, m.shape.height, m.shape.width}},
            {"shards", shards}};
  try {
    write_file_atomically(path, j.dump(2) + "\n");
  } catch (const std::runtime_error& e) {
    throw DataError("", std::string("cannot write manifest: ") + e.what());
  }
}

Manifest open_manifest(const std::string& manifest_or_dir, const std::string& split) {
  std::error_code ec;
  if (fs::is_directory(manifest_or_dir, ec)) {
    const std::string p = manifest_path(manifest_or_dir, split);
    if (!fs::exists(p, ec)) {
      throw DataError(p, "no manifest for split '" + split +
                             "' (not converted yet, or the conversion was interrupted)");
    }
    return read_manifest(p);
  }
  Manifest m = read_manifest(manifest_or_dir);
  if (!split.empty() && m.split != split) {
    throw DataError(manifest_or_dir,
                    "manifest is for split '" + m.split + "', not '" + split + "'");
  }
  return m;
}

}  // namespace agave::data
