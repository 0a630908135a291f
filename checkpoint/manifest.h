#pragma once
// Validation of a checkpoint's manifest.json before any of its fields is used to open a file or
// index a shard: the manifest is read from disk and may be corrupt or crafted. Header-only and
// free of LibTorch so the fuzz target (fuzz/) can run it.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "io/bounds.h"

namespace agave::checkpoint {

// The largest manifest.json read: a manifest lists tensor names and one line per rank.
inline constexpr uint64_t kMaxCheckpointManifestBytes = uint64_t{64} << 20;

// "" when the manifest's file names and indices are safe to use, else what is wrong (one line,
// naming the field). Every shard file must be a plain name inside the checkpoint folder, one
// shard per rank of world_size, and every tensor's shard index must point at a listed shard.
// Missing fields or wrong types throw nlohmann::json::exception, as elsewhere.
inline std::string checkpoint_manifest_problem(const nlohmann::json& j) {
  if (!j.is_object()) return "not a JSON object";
  const auto& shards = j.at("shards");
  if (!shards.is_array()) return "field 'shards' is not a list";
  for (const auto& s : shards) {
    const std::string file = s.at("file").get<std::string>();
    if (!io::plain_file_name(file)) {
      return "shard field 'file' is '" + file +
             "', must be a plain file name inside the checkpoint folder";
    }
    if (!s.at("sha256").is_string()) return "shard field 'sha256' is not a string";
  }
  const auto& world = j.at("world_size");
  if (!world.is_number_integer() || world.get<int64_t>() < 1 || world.get<int64_t>() > (1 << 20)) {
    return "field 'world_size' is " + world.dump() + ", expected 1 to 1048576";
  }
  if (shards.size() != static_cast<size_t>(world.get<int64_t>())) {
    return std::to_string(shards.size()) + " shards listed for world_size " + world.dump();
  }
  const auto& tensors = j.at("tensors");
  if (!tensors.is_object()) return "field 'tensors' is not a mapping";
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    const auto& v = it.value();
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        static_cast<uint64_t>(v.get<int64_t>()) >= shards.size()) {
      return "tensor " + it.key() + " is in shard " + v.dump() + ", but " +
             std::to_string(shards.size()) + " shards are listed";
    }
  }
  return "";
}

}  // namespace agave::checkpoint
