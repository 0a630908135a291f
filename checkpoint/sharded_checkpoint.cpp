#include "checkpoint/sharded_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/manifest.h"
#include "checkpoint/tensor_file.h"
#include "io/atomic_file.h"
#include "io/checksum.h"
#include "version/version.h"

namespace agave::checkpoint {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "agave-checkpoint-1";

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::string shard_name(int rank, int world) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard-%05d-of-%05d.h5", rank, world);
  return buf;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw CheckpointWriteError(path + ": cannot open for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw CheckpointWriteError(path + ": fsync failed: " + std::strerror(err));
}

// The cause in an error message from writing `path`, on one line: the system's words when the
// message carries them (HDF5's "error message = '...'", e.g. "No space left on device").
std::string cause_of(const std::string& what, const std::string& path) {
  const std::string tag = "error message = '";
  const auto at = what.find(tag);
  if (at != std::string::npos) {
    const auto end = what.find('\'', at + tag.size());
    if (end != std::string::npos) return what.substr(at + tag.size(), end - at - tag.size());
  }
  std::string line = what.substr(0, what.find('\n'));
  if (!path.empty() && line.rfind(path + ": ", 0) == 0) line = line.substr(path.size() + 2);
  return line;
}

// The manifest and `latest`: written whole or not at all (io/atomic_file.h); a failure is the
// checkpoint's (CheckpointWriteError), reported with the newest complete checkpoint.
void write_atomically(const std::string& path, const std::string& text) {
  try {
    io::write_file_atomically(path, text);
  } catch (const std::runtime_error& e) {
    throw CheckpointWriteError(e.what());
  }
}

bool complete(const fs::path& dir) { return fs::exists(dir / "manifest.json"); }

std::vector<fs::path> step_dirs(const std::string& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const auto name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json read_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  if (!in) throw CheckpointError(dir + ": not a complete checkpoint (no manifest.json)");
  std::error_code size_ec;
  const auto size = fs::file_size(path, size_ec);
  if (!size_ec && size > kMaxCheckpointManifestBytes) {
    throw CheckpointError(path + ": corrupt manifest: " + std::to_string(size) +
                          " bytes, at most " + std::to_string(kMaxCheckpointManifestBytes) +
                          " allowed");
  }
  try {
    auto j = nlohmann::json::parse(in);
    if (!j.is_object() || j.value("format", "") != kFormat) {
      throw CheckpointError(path + ": unknown format '" +
                            (j.is_object() ? j.value("format", "") : j.dump().substr(0, 40)) + "'");
    }
    const std::string problem = checkpoint_manifest_problem(j);
    if (!problem.empty()) throw CheckpointError(path + ": corrupt manifest: " + problem);
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path + ": corrupt manifest: " + e.what());
  }
}

// For an error about checkpoint `dir`: where the newest complete checkpoint older than it is,
// the one to resume from instead (--resume PATH), if there is one.
std::string previous_hint(const std::string& dir) {
  fs::path d = fs::path(dir).lexically_normal();
  if (d.filename().empty()) d = d.parent_path();
  std::string best;
  for (const auto& p : step_dirs(d.parent_path().string())) {
    if (p.filename() < d.filename() && complete(p)) best = p.string();
  }
  return best.empty() ? "" : "; previous complete checkpoint: " + best;
}

// Checks shard `s` of the manifest of `dir` against its SHA-256; throws a CheckpointError
// naming the file (and the checkpoint to fall back to) when it is missing or differs.
void verify_shard(const std::string& dir, const nlohmann::json& s) {
  const std::string path = dir + "/" + s.at("file").get<std::string>();
  if (!fs::exists(path)) throw CheckpointError(path + ": shard missing" + previous_hint(dir));
  const std::string sha = io::file_digest(path, io::Digest::Algorithm::kSha256);
  if (sha != s.at("sha256").get<std::string>()) {
    throw CheckpointError(path + ": SHA-256 mismatch (corrupt or modified shard): manifest says " +
                          s.at("sha256").get<std::string>() + ", file has " + sha +
                          previous_hint(dir));
  }
}

// One rank's outcome of writing its shard, as every rank learns it (all_gather_string of the
// JSON form): a failure anywhere fails the save everywhere at once instead of leaving the others
// waiting for a manifest.
struct ShardVote {
  std::string failure;  // empty: written
  std::string sha256;
  int64_t bytes = 0;
};

std::string encode(const ShardVote& v) {
  return nlohmann::json{{"failure", v.failure}, {"sha256", v.sha256}, {"bytes", v.bytes}}.dump();
}

ShardVote decode(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  return {j.at("failure"), j.at("sha256"), j.at("bytes")};
}

}  // namespace

std::map<std::string, int> assign_shards(const std::map<std::string, torch::Tensor>& state,
                                         int world_size) {
  std::vector<std::pair<int64_t, std::string>> by_size;
  for (const auto& [name, t] : state) by_size.emplace_back(t.numel() * t.element_size(), name);
  std::sort(by_size.begin(), by_size.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<int64_t> load(static_cast<size_t>(world_size), 0);
  std::map<std::string, int> out;
  for (const auto& [bytes, name] : by_size) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    load[r] += bytes;
    out[name] = r;
  }
  return out;
}

ShardedCheckpoint::ShardedCheckpoint(std::string root, int64_t keep, cluster::Communicator& comm,
                                     AfterShards after_shards)
    : root_(std::move(root)), keep_(keep), comm_(comm), after_shards_(std::move(after_shards)) {}

SaveResult ShardedCheckpoint::save(const CheckpointMeta& meta,
                                   const std::map<std::string, torch::Tensor>& state,
                                   const std::map<std::string, torch::Tensor>& rank_local) {
  const auto start = std::chrono::steady_clock::now();
  const int rank = comm_.rank(), world = comm_.size();
  const fs::path dir = fs::path(root_) / step_dir_name(meta.step);
  // Why this rank's part of the save failed (disk full, I/O error); empty when it did not.
  std::string failure;
  if (rank == 0) {
    // A folder of this step without a manifest is the remains of an interrupted save.
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!ec) fs::create_directories(dir, ec);
    if (ec) failure = dir.string() + ": cannot create the checkpoint folder: " + ec.message();
  }
  comm_.barrier();

  const auto owner = assign_shards(state, world);
  std::map<std::string, torch::Tensor> mine;
  for (const auto& [name, t] : state)
    if (owner.at(name) == rank) mine[name] = t;
  for (const auto& [name, t] : rank_local) mine[name] = t;
  const std::string shard = (dir / shard_name(rank, world)).string();
  ShardVote vote{failure, "", 0};
  if (failure.empty()) {
    try {
      write_tensor_file(shard, mine, {{"rank", rank}, {"world_size", world}, {"step", meta.step}});
      vote.sha256 = io::file_digest(shard, io::Digest::Algorithm::kSha256);
      vote.bytes = static_cast<int64_t>(fs::file_size(shard));
    } catch (const std::exception& e) {
      vote.failure = shard + ": cannot write checkpoint shard: " + cause_of(e.what(), shard);
    }
  }
  std::vector<ShardVote> shards;
  for (const auto& v : comm_.all_gather_string(encode(vote))) shards.push_back(decode(v));
  if (after_shards_) after_shards_(meta.step);
  for (const auto& v : shards) {
    if (!v.failure.empty()) fail_save(dir.string(), v.failure);
  }

  SaveResult result;
  result.dir = dir.string();
  if (rank == 0) {
    try {
      nlohmann::json j;
      j["format"] = kFormat;
      j["step"] = meta.step;
      j["phase"] = meta.phase;
      j["world_size"] = world;
      j["seed"] = meta.seed;
      j["loader"] = {{"epoch", meta.loader_epoch},
                     {"index", meta.loader_index},
                     {"global_batch", meta.loader_global_batch}};
      j["model_signature"] = meta.model_signature;
      j["config"] = meta.config;
      j["agave"] = version::to_json(version::build_info());
      for (int r = 0; r < world; ++r) {
        const auto& v = shards[static_cast<size_t>(r)];
        j["shards"].push_back(
            {{"file", shard_name(r, world)}, {"sha256", v.sha256}, {"bytes", v.bytes}});
      }
      for (const auto& [name, r] : owner) j["tensors"][name] = r;
      for (const auto& [name, t] : rank_local) j["rank_local"].push_back(name);
      fsync_path(dir.string(), true);
      write_atomically((dir / "manifest.json").string(), j.dump(1) + "\n");
      write_atomically((fs::path(root_) / "latest").string(), dir.filename().string() + "\n");
    } catch (const std::exception& e) {
      // The other ranks wait in the barrier below; this one ends the job.
      fail_save(dir.string(), cause_of(e.what(), ""));
    }
    prune(dir);
  }
  for (const auto& v : shards) result.bytes += v.bytes;
  // Nobody moves on (or exits) before the checkpoint is complete. Rank 0 alone wrote the
  // manifest and pruned (gigabytes on a slow shared file system at paper size).
  comm_.barrier_while_alive("rank 0's manifest of step " + std::to_string(meta.step));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void ShardedCheckpoint::fail_save(const std::string& dir, const std::string& why) const {
  std::string what = why;
  if (comm_.rank() == 0) {
    // A folder without a manifest is no checkpoint: free its space now (a full disk) rather
    // than at the next save. A complete one (only `latest` failed) stays.
    std::error_code ec;
    if (!complete(dir)) fs::remove_all(dir, ec);
  }
  const auto newest = latest(root_);
  what += "; checkpoint " + fs::path(dir).filename().string() +
          (complete(dir) ? " written but `latest` not updated; " : " not saved; ") +
          (newest ? "newest complete checkpoint: " + *newest : "no complete checkpoint yet");
  if (comm_.rank() != 0) {
    // Rank 0 throws the same error and its handler ends the job (MPI_Abort); waiting for that
    // here makes the job print the error once instead of once per rank. The barrier's timeout
    // bounds the wait should rank 0 not end the job.
    try {
      comm_.barrier();
    } catch (const std::exception&) {
    }
  }
  throw CheckpointWriteError(what);
}

void ShardedCheckpoint::prune(const fs::path& written) const {
  // Folders named after a later step than the one just written are a history this run left
  // (it resumed from an earlier checkpoint): they are neither "newer" nor counted, and are
  // replaced as training passes their steps. Keeping the newest by name instead deleted the
  // checkpoint just written while `latest` named it.
  std::vector<fs::path> done;
  for (const auto& d : step_dirs(root_)) {
    if (!complete(d)) {
      fs::remove_all(d);
    } else if (d.filename() <= written.filename()) {
      done.push_back(d);
    }
  }
  const auto named = latest(root_);
  while (static_cast<int64_t>(done.size()) > keep_) {
    const fs::path oldest = done.front();
    done.erase(done.begin());
    if (oldest == written || (named && fs::path(*named) == oldest)) continue;
    fs::remove_all(oldest);
  }
}

std::optional<std::string> ShardedCheckpoint::latest(const std::string& root) {
  std::ifstream in(fs::path(root) / "latest");
  std::string name;
  if (in >> name && complete(fs::path(root) / name)) return (fs::path(root) / name).string();
  // No pointer, or it names a folder that is gone: the newest complete folder.
  auto dirs = step_dirs(root);
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
    if (complete(*it)) return it->string();
  return std::nullopt;
}

CheckpointMeta ShardedCheckpoint::read_meta(const std::string& dir) {
  const auto j = read_manifest(dir);
  CheckpointMeta m;
  try {
    m.step = j.at("step");
    m.phase = j.at("phase");
    m.world_size = j.at("world_size");
    if (m.step < 0 || m.world_size < 1) {
      throw CheckpointError(dir + "/manifest.json: impossible step " + std::to_string(m.step) +
                            " or world_size " + std::to_string(m.world_size));
    }
    m.seed = j.at("seed");
    m.loader_epoch = j.at("loader").at("epoch");
    m.loader_index = j.at("loader").at("index");
    m.loader_global_batch = j.at("loader").value("global_batch", int64_t{0});
    m.model_signature = j.at("model_signature").get<std::map<std::string, std::string>>();
    m.config = j.at("config");
    if (j.contains("agave")) {  // absent in manifests older than the field
      m.agave_version = j.at("agave").value("version", "");
      m.agave_commit = j.at("agave").value("commit", "");
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(dir + "/manifest.json: incomplete manifest: " + e.what());
  }
  return m;
}

bool ShardedCheckpoint::load(const std::string& dir, std::map<std::string, torch::Tensor>& state,
                             std::map<std::string, torch::Tensor>* rank_local) const {
  const auto j = read_manifest(dir);
  const int world = j.at("world_size");
  // Every shard is hashed once, not once per rank: rank r checks shards r, r + size, ... and
  // the ranks share their verdicts (all ranks read every shard below, from a shared folder).
  const auto& shards = j.at("shards");
  std::string problem;
  for (size_t i = static_cast<size_t>(comm_.rank()); i < shards.size() && problem.empty();
       i += static_cast<size_t>(comm_.size())) {
    try {
      verify_shard(dir, shards[i]);
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  for (const auto& p : comm_.all_gather_string(problem)) {
    if (!p.empty()) throw CheckpointError(p);  // the same error on every rank
  }
  std::vector<std::unique_ptr<TensorFileReader>> readers;
  for (const auto& s : shards) {
    readers.push_back(
        std::make_unique<TensorFileReader>(dir + "/" + s.at("file").get<std::string>()));
  }
  const auto& tensors = j.at("tensors");
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    if (!state.count(it.key())) {
      throw CheckpointError(dir + ": holds tensor " + it.key() + " that this model does not have");
    }
  }
  for (auto& [name, t] : state) {
    if (!tensors.contains(name)) {
      throw CheckpointError(dir + ": lacks tensor " + name + " of this model");
    }
    readers.at(tensors.at(name).get<size_t>())->read_into(name, t);
  }
  if (!rank_local || world != comm_.size()) return false;
  for (auto& [name, t] : *rank_local) t = readers.at(comm_.rank())->read(name);
  return true;
}

void ShardedCheckpoint::load_subset(const std::string& dir,
                                    std::map<std::string, torch::Tensor>& state) {
  const auto j = read_manifest(dir);
  try {
    const auto& tensors = j.at("tensors");
    const auto& shards = j.at("shards");
    std::map<size_t, std::vector<std::string>> by_shard;
    for (const auto& [name, t] : state) {
      if (!tensors.contains(name)) {
        throw CheckpointError(dir + ": lacks tensor " + name + " of this model");
      }
      by_shard[tensors.at(name).get<size_t>()].push_back(name);
    }
    for (const auto& [index, names] : by_shard) {
      if (index >= shards.size()) {
        throw CheckpointError(dir + "/manifest.json: tensor " + names.front() + " is in shard " +
                              std::to_string(index) + ", which is not listed");
      }
      const auto& s = shards.at(index);
      const std::string path = dir + "/" + s.at("file").get<std::string>();
      verify_shard(dir, s);
      try {
        TensorFileReader reader(path);
        for (const auto& name : names) reader.read_into(name, state.at(name));
      } catch (const CheckpointError&) {
        throw;
      } catch (const std::runtime_error& e) {
        throw CheckpointError(e.what());  // unreadable file, or a shape or dtype that differs
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(dir + "/manifest.json: incomplete manifest: " + e.what());
  }
}

}  // namespace agave::checkpoint
