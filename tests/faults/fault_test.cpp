// Failures during training and checkpointing, for real: agave_trainer jobs under mpirun with a
// tiny Fashion-MNIST model, a rank killed with SIGKILL, a job killed between its shards and its
// manifest, a corrupt shard, and a checkpoint folder on a tmpfs that runs full. After each, the
// last complete checkpoint must verify (SHA-256 of every shard) and a `--resume auto` run must
// continue from it and finish the full step count.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "checkpoint/sharded_checkpoint.h"
#include "io/checksum.h"
#include "tests/common/background_job.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::testing {
namespace {

using agave::checkpoint::ShardedCheckpoint;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// "" when `dir` is a complete checkpoint whose shards all match the manifest's SHA-256 and
// size; otherwise what is wrong.
std::string verify(const std::string& dir) {
  std::ifstream in(dir + "/manifest.json");
  if (!in) return dir + ": no manifest.json";
  const auto m = nlohmann::json::parse(in);
  if (m.at("shards").size() != m.at("world_size").get<size_t>()) return dir + ": shard count";
  for (const auto& s : m.at("shards")) {
    const std::string path = dir + "/" + s.at("file").get<std::string>();
    if (!fs::exists(path)) return path + ": missing";
    if (static_cast<int64_t>(fs::file_size(path)) != s.at("bytes").get<int64_t>()) {
      return path + ": size differs from the manifest";
    }
    if (agave::io::file_digest(path, agave::io::Digest::Algorithm::kSha256) !=
        s.at("sha256").get<std::string>()) {
      return path + ": SHA-256 differs from the manifest";
    }
  }
  return "";
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class Faults : public FashionMnistRun {
 protected:
  // The tiny model of tests/trainer (dropout on, so that resuming must restore the random
  // streams too), `steps` steps in two phases, a checkpoint every `every` steps.
  std::string config(const std::string& out, int steps, int every, int keep = 3) {
    return dir_.write("c.yaml", TinyConfig("r", out, shards())
                                    .seed(5)
                                    .dropout(0.5)
                                    .batch_size(2)
                                    .phases({{"pretrain_vae", 2}, {"joint", steps - 2}})
                                    .eval(2, 4, 4, 0)
                                    .checkpoint(every, keep)
                                    .log_every(1)
                                    .timeout_seconds(20)
                                    .yaml());
  }
  Result train(const std::string& cfg, const std::string& env = "", const std::string& args = "") {
    return sh(env + " " + mpirun(2) + kTrainer + " " + cfg + " " + args);
  }
  static std::string ckpt(const std::string& out, int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "step-%08lld", static_cast<long long>(step));
    return out + "/r/checkpoints/" + buf;
  }
  // Every folder under checkpoints/ is complete and verifies; `latest` names the newest.
  void expect_only_complete_checkpoints(const std::string& out, int64_t newest) {
    for (const auto& name : listing(out + "/r/checkpoints")) {
      if (name == "latest") continue;
      EXPECT_EQ(verify(out + "/r/checkpoints/" + name), "") << name;
    }
    EXPECT_EQ(read_file(out + "/r/checkpoints/latest"),
              fs::path(ckpt(out, newest)).filename().string() + "\n");
  }
  TempDir dir_;
};

// A rank killed with SIGKILL mid-training (no handler runs, no checkpoint): mpirun ends the job
// at once with a non-zero code, and `--resume auto` continues from the last periodic checkpoint
// to the end.
TEST_F(Faults, KillNineOfOneRankMidTrainingThenResume) {
  const int steps = 14;
  const std::string out = (dir_.path() / "killed").string();
  const std::string cfg = config(out, steps, 2);
  const fs::path d = dir_.path();
  const std::string job = "(" + mpirun(2) + kTrainer + " " + cfg + " > " + (d / "log").string() +
                          " 2>&1 & echo $! > " + (d / "pid").string() + "; wait $!; echo $? > " +
                          (d / "rc").string() + ") &";
  ASSERT_EQ(std::system(job.c_str()), 0);
  // A failed assertion must not leave the job running: mpirun takes its ranks with it.
  struct Reaper {
    fs::path d;
    ~Reaper() {
      const std::string pid = read_file(d / "pid");
      if (pid.empty() || !read_file(d / "rc").empty()) return;
      for (int r = 0; r < 2; ++r) {
        if (const int p = rank_pid(std::stoi(pid), r); p > 0) ::kill(p, SIGKILL);
      }
      ::kill(std::stoi(pid), SIGTERM);
    }
  } reaper{d};
  for (int i = 0; i < 100 && read_file(d / "pid").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Past the first checkpoint (step 4), well before the end.
  const std::string first_ckpt = "checkpoint " + ckpt(out, 4) + " (";
  for (int i = 0; i < 1200 && read_file(d / "log").find(first_ckpt) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(read_file(d / "log").find(first_ckpt), std::string::npos) << read_file(d / "log");
  const int mpirun_pid = std::stoi(read_file(d / "pid"));
  const int victim = rank_pid(mpirun_pid, 1);
  ASSERT_GT(victim, 0) << "no child of mpirun " << mpirun_pid << " is rank 1";
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  const auto killed = Clock::now();
  while (read_file(d / "rc").empty() && seconds_since(killed) < 60) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double seconds = seconds_since(killed);
  const std::string log = read_file(d / "log");
  ASSERT_FALSE(read_file(d / "rc").empty()) << "the job still runs 60 s after the kill\n" << log;
  EXPECT_NE(std::stoi(read_file(d / "rc")), 0) << log;
  EXPECT_LT(seconds, 15) << log;  // mpirun notices the dead rank; no collective timeout needed
  EXPECT_NE(log.find("process rank 1 with PID"), std::string::npos) << log;
  EXPECT_NE(log.find("signal 9"), std::string::npos) << log;
  EXPECT_EQ(log.find("step " + std::to_string(steps) + "/"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out + "/r/summary.json"));

  // The newest complete checkpoint is intact; a save the kill interrupted is no checkpoint.
  const auto last = ShardedCheckpoint::latest(out + "/r/checkpoints");
  ASSERT_TRUE(last.has_value()) << log;
  EXPECT_EQ(verify(*last), "");
  const int64_t k = ShardedCheckpoint::read_meta(*last).step;
  EXPECT_GE(k, 4);
  EXPECT_LT(k, steps);
  std::cout << "killed rank 1 (pid " << victim << ") after " << first_ckpt << "; job ended after "
            << seconds << " s; last complete checkpoint: step " << k << "\n";

  const auto resumed = train(cfg);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + *last + " at step " + std::to_string(k)),
            std::string::npos)
      << resumed.output;
  // The first step trained after the resume is k + 1; none before it.
  EXPECT_NE(resumed.output.find("step " + std::to_string(k + 1) + "/" + std::to_string(steps)),
            std::string::npos)
      << resumed.output;
  EXPECT_EQ(resumed.output.find("step " + std::to_string(k) + "/"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("2 replica(s) in sync after " + std::to_string(steps) + " step(s)"),
            std::string::npos)
      << resumed.output;
  std::ifstream summary(out + "/r/summary.json");
  ASSERT_TRUE(summary) << resumed.output;
  EXPECT_EQ(nlohmann::json::parse(summary)["steps"], steps);
  expect_only_complete_checkpoints(out, steps);
}

// The job killed (SIGKILL on every rank, AGAVE_FAULT_CHECKPOINT) after the shards of step 4
// are on disk and before rank 0 writes the manifest: step 4 is no checkpoint, step 2 is intact
// and is the one a resume loads, and the partial folder is replaced by a complete one.
TEST_F(Faults, KillBetweenShardsAndManifestKeepsThePreviousCheckpoint) {
  const int steps = 8;
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = config(out, steps, 2);
  const auto crashed = train(cfg, "AGAVE_FAULT_CHECKPOINT=kill-after-shards:4");
  ASSERT_NE(crashed.code, 0) << crashed.output;
  EXPECT_NE(crashed.output.find("signal 9"), std::string::npos) << crashed.output;
  EXPECT_EQ(crashed.output.find("checkpoint " + ckpt(out, 4)), std::string::npos) << crashed.output;

  // Both shards of step 4 were written; its manifest never was.
  EXPECT_EQ(listing(ckpt(out, 4)),
            (std::vector<std::string>{"shard-00000-of-00002.h5", "shard-00001-of-00002.h5"}));
  EXPECT_EQ(read_file(out + "/r/checkpoints/latest"), "step-00000002\n");
  EXPECT_EQ(ShardedCheckpoint::latest(out + "/r/checkpoints"), ckpt(out, 2));
  EXPECT_EQ(verify(ckpt(out, 2)), "");
  // Even without the `latest` pointer the partial folder is not taken for a checkpoint.
  fs::remove(out + "/r/checkpoints/latest");
  EXPECT_EQ(ShardedCheckpoint::latest(out + "/r/checkpoints"), ckpt(out, 2));

  const auto resumed = train(cfg);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + ckpt(out, 2) + " at step 2"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("checkpoint " + ckpt(out, 4) + " ("), std::string::npos)
      << resumed.output;
  expect_only_complete_checkpoints(out, steps);
  EXPECT_TRUE(fs::exists(ckpt(out, 4) + "/manifest.json"));
}

// A byte flipped in the newest checkpoint (tests/trainer covers the error itself): the error
// line names the shard and the previous complete checkpoint, which `--resume PATH` then
// continues from to the end, replacing the corrupt one.
TEST_F(Faults, CorruptNewestCheckpointNamesThePreviousOneWhichResumes) {
  const int steps = 8;
  const std::string out = (dir_.path() / "o").string();
  const std::string cfg = config(out, steps, 2);
  const auto first = train(cfg, "AGAVE_FAULT=stop:3:1");
  ASSERT_EQ(first.code, 75) << first.output;
  ASSERT_EQ(verify(ckpt(out, 4)), "");
  // One byte in the middle of rank 0's shard: tensor data, not HDF5 metadata.
  const std::string shard = ckpt(out, 4) + "/shard-00000-of-00002.h5";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(fs::file_size(shard) / 2);
    f.seekg(middle);
    char c = 0;
    f.get(c);
    f.seekp(middle);
    f.put(static_cast<char>(c ^ 0x01));
  }
  EXPECT_NE(verify(ckpt(out, 4)), "");

  const auto refused = train(cfg);
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_EQ(count_of(refused.output, "agave_trainer: error: "), 1u) << refused.output;
  EXPECT_NE(refused.output.find(shard + ": SHA-256 mismatch"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("previous complete checkpoint: " + ckpt(out, 2)), std::string::npos)
      << refused.output;
  EXPECT_EQ(verify(ckpt(out, 2)), "");

  const auto resumed = train(cfg, "", "--resume " + ckpt(out, 2));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + ckpt(out, 2) + " at step 2"), std::string::npos)
      << resumed.output;
  expect_only_complete_checkpoints(out, steps);
}

// A small tmpfs mounted as the run's output folder (root only).
class Tmpfs {
 public:
  explicit Tmpfs(const fs::path& where) : path_(where) {
    fs::create_directories(path_);
    mounted_ = ::mount("agave-fault-test", path_.c_str(), "tmpfs", 0, "size=16m") == 0;
    error_ = mounted_ ? "" : std::string(std::strerror(errno));
  }
  ~Tmpfs() {
    if (mounted_ && ::umount(path_.c_str()) != 0) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  bool resize(int64_t bytes) {
    return ::mount("agave-fault-test", path_.c_str(), "tmpfs", MS_REMOUNT,
                   ("size=" + std::to_string(bytes)).c_str()) == 0;
  }
  int64_t used() const {
    struct statvfs s {};
    ::statvfs(path_.c_str(), &s);
    return static_cast<int64_t>((s.f_blocks - s.f_bfree) * s.f_frsize);
  }

 private:
  fs::path path_;
  bool mounted_ = false;
  std::string error_;
};

// The checkpoint disk runs full in the middle of a save: the job fails at once with one error
// line naming the shard and the cause; the previous checkpoint on that disk still verifies,
// and once there is space again `--resume auto` continues from it and finishes.
TEST_F(Faults, DiskFullDuringSaveKeepsThePreviousCheckpoint) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  const fs::path disk = dir_.path() / "disk";
  Tmpfs tmpfs(disk);
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << tmpfs.error();
  const int steps = 8;
  const std::string out = (disk / "runs").string();
  const std::string cfg = config(out, steps, 0);

  const auto first = train(cfg, "AGAVE_FAULT=stop:3:0");
  ASSERT_EQ(first.code, 75) << first.output;
  ASSERT_EQ(verify(ckpt(out, 4)), "");
  int64_t ckpt_bytes = 0;
  for (const auto& e : fs::directory_iterator(ckpt(out, 4))) ckpt_bytes += fs::file_size(e.path());
  // Room for half a checkpoint (and the run's log lines): the next save fails midway.
  const int64_t page = 4096;
  const int64_t size = (tmpfs.used() + ckpt_bytes / 2 + page - 1) / page * page;
  ASSERT_GT(ckpt_bytes / 2, 8 * page) << "the test model's checkpoint is too small";
  ASSERT_TRUE(tmpfs.resize(size)) << std::strerror(errno);

  const auto start = Clock::now();
  const auto full = train(cfg);
  const double seconds = seconds_since(start);
  EXPECT_NE(full.code, 0) << full.output;
  EXPECT_NE(full.code, 2) << "exit 2 means a bad config or checkpoint\n" << full.output;
  EXPECT_LT(seconds, 60) << full.output;
  EXPECT_NE(full.output.find("resumed from " + ckpt(out, 4) + " at step 4"), std::string::npos)
      << full.output;
  // One error line (rank 0 reports for all), naming the first shard that failed and the cause.
  EXPECT_EQ(count_of(full.output, "agave_trainer: error: "), 1u) << full.output;
  const auto at = full.output.find("agave_trainer: error: ");
  ASSERT_NE(at, std::string::npos) << full.output;
  const std::string line = full.output.substr(at, full.output.find('\n', at) - at);
  EXPECT_NE(line.find(ckpt(out, 8) + "/shard-0000"), std::string::npos) << line;
  EXPECT_NE(line.find("No space left on device"), std::string::npos) << line;
  EXPECT_NE(line.find("newest complete checkpoint: " + ckpt(out, 4)), std::string::npos) << line;
  std::cout << "disk full after " << seconds << " s: " << line << "\n";
  // The partial folder is removed at once, which frees its space.
  EXPECT_FALSE(fs::exists(ckpt(out, 8)));
  EXPECT_EQ(read_file(out + "/r/checkpoints/latest"), "step-00000004\n");
  EXPECT_EQ(verify(ckpt(out, 4)), "");

  ASSERT_TRUE(tmpfs.resize(16 << 20)) << std::strerror(errno);
  const auto resumed = train(cfg);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + ckpt(out, 4) + " at step 4"), std::string::npos)
      << resumed.output;
  expect_only_complete_checkpoints(out, steps);
}

}  // namespace
}  // namespace agave::testing
