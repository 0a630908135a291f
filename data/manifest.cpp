#include "data/manifest.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "data/errors.h"
#include "io/atomic_file.h"
#include "io/bounds.h"

namespace agave::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// An integer field. nlohmann's get<int64_t>() casts a float (1e300) or a too-large unsigned
// value to int64_t, which is undefined behaviour: only JSON integers that fit are taken.
int64_t int_field(const json& j, const char* key, const std::string& path) {
  const json& v = j.at(key);
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() &&
       v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    throw io::BadDataError(
        path, std::string("field '") + key + "' is " + v.dump() + ", expected an integer");
  }
  return v.get<int64_t>();
}

}  // namespace

std::string Manifest::dir() const { return fs::path(path).parent_path().string(); }

std::string Manifest::shard_path(const ManifestShard& s) const {
  return (fs::path(path).parent_path() / s.file).string();
}

std::string manifest_path(const std::string& dir, const std::string& split) {
  return (fs::path(dir) / (split + ".manifest.json")).string();
}

Manifest read_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    throw io::DataError(path, fs::exists(path, ec)
                                  ? std::string("cannot read: ") + std::strerror(errno)
                                  : "no such manifest");
  }
  // A manifest lists a few shards (about 150 bytes each): anything this large is not one, and
  // parsing it would only cost memory.
  std::error_code size_ec;
  const uint64_t size = fs::file_size(path, size_ec);
  if (!size_ec && size > kMaxManifestBytes) {
    throw io::BadDataError(path, "manifest is " + std::to_string(size) + " bytes; at most " +
                                     std::to_string(kMaxManifestBytes) + " allowed");
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_manifest(text, path);
}

// Long on purpose: one check per field, in the file's order, each with its own message.
Manifest parse_manifest(const std::string& text, const std::string& path) {
  if (text.size() > kMaxManifestBytes) {
    throw io::BadDataError(path, "manifest is " + std::to_string(text.size()) + " bytes; at most " +
                                     std::to_string(kMaxManifestBytes) + " allowed");
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw io::BadDataError(path, std::string("manifest is not valid JSON: ") + e.what());
  }
  Manifest m;
  m.path = path;
  try {
    if (!j.is_object()) throw io::BadDataError(path, "manifest is not a JSON object");
    if (j.at("format").get<std::string>() != kManifestFormat) {
      throw io::BadDataError(
          path, "not an agave shard manifest (format '" + j.at("format").get<std::string>() + "')");
    }
    if (j.contains("format_version") && int_field(j, "format_version", path) != 1) {
      throw io::BadDataError(path, "field 'format_version' is " + j.at("format_version").dump() +
                                       "; this build reads version 1");
    }
    m.dataset = j.at("dataset").get<std::string>();
    m.split = j.at("split").get<std::string>();
    m.source = j.value("source", "");
    m.count = int_field(j, "count", path);
    const json& dims = j.at("image_shape");
    if (!dims.is_array() || dims.size() != 3) {
      throw io::BadDataError(path, "field 'image_shape' must hold 3 numbers");
    }
    std::vector<int64_t> shape;
    for (const json& d : dims) {
      if (!d.is_number_integer() || d.is_number_unsigned()) {
        if (!(d.is_number_unsigned() && d.get<uint64_t>() <= (uint64_t{1} << 62))) {
          throw io::BadDataError(path,
                                 "field 'image_shape' is " + dims.dump() + ", expected 3 integers");
        }
      }
      shape.push_back(d.get<int64_t>());
    }
    m.shape = ImageShape{shape[0], shape[1], shape[2]};
    io::require_image_dims(path, "field 'image_shape'", shape[0], shape[1], shape[2]);
    if (!j.at("shards").is_array()) throw io::BadDataError(path, "field 'shards' must be a list");
    for (const auto& s : j.at("shards")) {
      m.shards.push_back(ManifestShard{s.at("file").get<std::string>(), int_field(s, "count", path),
                                       int_field(s, "first_index", path),
                                       s.at("sha256").get<std::string>()});
    }
  } catch (const json::exception& e) {
    throw io::BadDataError(
        path, std::string("manifest is missing a field or has a wrong type: ") + e.what());
  }
  int64_t next = 0;
  for (const auto& s : m.shards) {
    // The shard is opened as <manifest folder>/<file>: a path would reach outside the folder.
    if (!io::plain_file_name(s.file)) {
      throw io::BadDataError(path, "shard field 'file' is '" + s.file +
                                       "': must be a plain file name inside the manifest's folder "
                                       "(no '/', '..' or absolute path)");
    }
    if (!s.sha256.empty() && !io::sha256_hex(s.sha256)) {
      throw io::BadDataError(path, "shard " + s.file + ": field 'sha256' is '" + s.sha256 +
                                       "', expected 64 lower-case hex digits");
    }
    if (s.count <= 0 || s.first_index != next) {
      throw io::BadDataError(path, "shard " + s.file + " has count " + std::to_string(s.count) +
                                       " and first_index " + std::to_string(s.first_index) +
                                       ", expected a count >= 1 and first_index " +
                                       std::to_string(next));
    }
    const auto sum = io::checked_add(static_cast<uint64_t>(next), static_cast<uint64_t>(s.count),
                                     static_cast<uint64_t>(kMaxSplitImages));
    if (!sum) {
      throw io::BadDataError(path, "shard " + s.file + ": field 'count' " +
                                       std::to_string(s.count) + " makes the split larger than " +
                                       std::to_string(kMaxSplitImages) + " images");
    }
    next = static_cast<int64_t>(*sum);
  }
  if (next != m.count || m.shards.empty()) {
    throw io::BadDataError(path, "field 'count' is " + std::to_string(m.count) +
                                     ", but the shard counts add up to " + std::to_string(next));
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
    io::write_file_atomically(path, j.dump(2) + "\n");
  } catch (const std::runtime_error& e) {
    throw io::DataError("", std::string("cannot write manifest: ") + e.what());
  }
}

Manifest open_manifest(const std::string& manifest_or_dir, const std::string& split) {
  std::error_code ec;
  if (fs::is_directory(manifest_or_dir, ec)) {
    const std::string p = manifest_path(manifest_or_dir, split);
    if (!fs::exists(p, ec)) {
      throw io::DataError(p, "no manifest for split '" + split +
                                 "' (not converted yet, or the conversion was interrupted)");
    }
    return read_manifest(p);
  }
  Manifest m = read_manifest(manifest_or_dir);
  if (!split.empty() && m.split != split) {
    throw io::DataError(manifest_or_dir,
                        "manifest is for split '" + m.split + "', not '" + split + "'");
  }
  return m;
}

}  // namespace agave::data
