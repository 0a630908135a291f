// The fuzz targets (fuzz/targets.h). Inputs are written to a private temporary file where the
// parser takes a path (HDF5, zlib's gzip reader, the config loader): what is fuzzed is exactly
// the code a user's file reaches.
#include "fuzz/targets.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/manifest.h"
#include "data/errors.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "data/sources.h"
#include "io/bounds.h"
#include "launcher/config.h"
#include "launcher/config_error.h"

namespace agave::fuzz {
namespace {

namespace fs = std::filesystem;

// A folder of this process's own for the input files (tmpfs when there is one).
const fs::path& scratch() {
  static const fs::path dir = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("agave-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string put(const std::string& name, const uint8_t* data, size_t size) {
  const fs::path p = scratch() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p.string();
}

// Splits an input at the first occurrence of `sep` (for targets that take two files).
std::pair<std::string, std::string> split(const uint8_t* data, size_t size,
                                          const std::string& sep) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  const auto at = s.find(sep);
  if (at == std::string::npos) return {s, ""};
  return {s.substr(0, at), s.substr(at + sep.size())};
}

}  // namespace

int shard(const uint8_t* data, size_t size) {
  const std::string path = put("shard.h5", data, size);
  try {
    data::ShardReader reader(path);
    const auto& info = reader.info();
    // What the loader does with the chunk index: every location is checked against the file
    // before a byte of it is read, here from an in-memory copy so ASan sees any overrun.
    if (const auto locs = reader.chunk_locations()) {
      for (const auto& c : *locs) {
        if (!io::range_fits(c.offset, c.stored_bytes, size)) __builtin_trap();
        volatile uint8_t sink = 0;
        if (c.stored_bytes > 0) sink = data[c.offset] ^ data[c.offset + c.stored_bytes - 1];
        (void)sink;
      }
    }
    // Reading through HDF5 is bounded by the checks above (count·C·H·W vs the file size).
    if (static_cast<uint64_t>(info.count) * static_cast<uint64_t>(info.image_bytes()) <=
        (uint64_t{4} << 20)) {
      reader.compute_sha256();
    }
  } catch (const io::DataError&) {
  }
  return 0;
}

int manifest(const uint8_t* data, size_t size) {
  try {
    const data::Manifest m =
        data::parse_manifest(std::string(reinterpret_cast<const char*>(data), size), "m.json");
    // What readers do next with it: every path stays inside the folder.
    for (const auto& s : m.shards) {
      if (fs::path(s.file).has_parent_path() || fs::path(s.file).is_absolute()) __builtin_trap();
      (void)m.shard_path(s);
    }
  } catch (const io::DataError&) {
  }
  return 0;
}

// Input: the images file, "\n--labels--\n", the labels file (either may be gzipped).
int idx(const uint8_t* data, size_t size) {
  const auto [images, labels] = split(data, size, "\n--labels--\n");
  const fs::path dir = scratch() / "idx";
  fs::create_directories(dir);
  for (const char* prefix : {"train", "t10k"}) {
    std::ofstream(dir / (std::string(prefix) + "-images-idx3-ubyte"), std::ios::binary) << images;
    std::ofstream(dir / (std::string(prefix) + "-labels-idx1-ubyte"), std::ios::binary) << labels;
  }
  try {
    auto splits = data::open_source(data::Dataset::kFashionMnist, dir.string());
    for (auto& s : splits) {
      const auto shape = s->shape();
      const int64_t n = 16;
      std::vector<uint8_t> img(
          static_cast<size_t>(n * shape.channels * shape.height * shape.width));
      std::vector<uint8_t> lab(n);
      while (s->read(img.data(), lab.data(), n) > 0) {
      }
    }
  } catch (const io::DataError&) {
  }
  return 0;
}

// Input: one CIFAR-10 binary batch file (the other five are one valid record each).
int cifar(const uint8_t* data, size_t size) {
  const fs::path dir = scratch() / "cifar";
  fs::create_directories(dir);
  const std::string record(static_cast<size_t>(data::kCifarRecordBytes), '\1');
  for (const char* n : {"data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin"}) {
    std::ofstream(dir / n, std::ios::binary) << record;
  }
  std::ofstream(dir / "data_batch_1.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    auto splits = data::open_source(data::Dataset::kCifar10, dir.string());
    std::vector<uint8_t> img(64 * 3072), lab(64);
    for (auto& s : splits) {
      while (s->read(img.data(), lab.data(), 64) > 0) {
      }
    }
  } catch (const io::DataError&) {
  }
  return 0;
}

int tar(const uint8_t* data, size_t size) {
  const std::string path = put("a.tar.gz", data, size);
  try {
    const auto members =
        data::read_tar_members(path, {"data_batch_1.bin", "test_batch.bin"}, 1 << 20);
    for (const auto& [name, bytes] : members) {
      if (bytes.size() > (1u << 20)) __builtin_trap();
    }
  } catch (const io::DataError&) {
  }
  return 0;
}

int config(const uint8_t* data, size_t size) {
  const std::string path = put("c.yaml", data, size);
  try {
    const launcher::Sweep sweep = launcher::load_sweep(path, {});
    if (sweep.size() > static_cast<size_t>(launcher::kMaxSweepPoints)) __builtin_trap();
    (void)launcher::to_yaml_string(sweep.point(sweep.size() - 1).config);
  } catch (const launcher::ConfigError&) {
  }
  return 0;
}

int checkpoint_manifest(const uint8_t* data, size_t size) {
  try {
    const auto j = nlohmann::json::parse(data, data + size);
    if (checkpoint::checkpoint_manifest_problem(j).empty()) {
      // What load() does with a manifest that passed: every index is a listed shard.
      const auto& shards = j.at("shards");
      for (auto it = j.at("tensors").begin(); it != j.at("tensors").end(); ++it) {
        (void)shards[it.value().get<size_t>()].at("file");
      }
    }
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}

const std::vector<NamedTarget>& all_targets() {
  static const std::vector<NamedTarget> targets = {{"shard", shard},
                                                   {"manifest", manifest},
                                                   {"idx", idx},
                                                   {"cifar", cifar},
                                                   {"tar", tar},
                                                   {"config", config},
                                                   {"checkpoint_manifest", checkpoint_manifest}};
  return targets;
}

}  // namespace agave::fuzz
