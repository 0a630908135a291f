// Sharded checkpoints and resume as a run sees them: real agave_trainer jobs under
// mpirun that stop, resume, and must end bit-identical to a run never stopped.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "checkpoint/sharded_checkpoint.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"
#include "version/version.h"

namespace agave::trainer {
namespace {

using agave::testing::kTrainer;
using agave::testing::mpirun;
using agave::testing::sh;
using agave::testing::TempDir;
using agave::testing::TinyConfig;
namespace fs = std::filesystem;

const std::string kCompare =
    std::string(AGAVE_SOURCE_DIR) + "/tests/trainer/compare_checkpoints.py";

class Resume : public agave::testing::FashionMnistRun {
 protected:
  // A tiny model with dropout on, so that the random streams matter for bit-identity.
  std::string config(const std::string& out) {
    return dir_.write("c.yaml", TinyConfig("r", out, (dir_.path() / "shards").string())
                                    .seed(5)
                                    .dropout(0.5)
                                    .batch_size(8)
                                    .phases({{"pretrain_vae", 2}, {"joint", 6}})
                                    .eval(2, 8, 8, 0)
                                    .checkpoint(0, 2)
                                    .log_every(2)
                                    .yaml());
  }
  std::string train(int np, const std::string& out, const std::string& env = "",
                    const std::string& args = "") {
    last_ = sh(env + " " + mpirun(np) + kTrainer + " " + config(out) + " " + args);
    return last_.output;
  }
  static std::string ckpt(const std::string& out, int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "/r/checkpoints/step-%08lld", static_cast<long long>(step));
    return out + buf;
  }
  TempDir dir_;
  agave::testing::Result last_;
};

TEST_F(Resume, StopAndResumeIsBitIdenticalToAStraightRun) {
  const std::string straight = (dir_.path() / "straight").string();
  const std::string stopped = (dir_.path() / "stopped").string();
  train(2, straight);
  ASSERT_EQ(last_.code, 0) << last_.output;
  ASSERT_TRUE(fs::exists(ckpt(straight, 8) + "/manifest.json")) << last_.output;

  train(2, stopped, "AGAVE_FAULT=stop:3:1");  // rank 1 alone asks; both must stop together
  ASSERT_EQ(last_.code, 75) << last_.output;
  EXPECT_NE(last_.output.find("stop requested: checkpointing at step 4"), std::string::npos)
      << last_.output;
  ASSERT_TRUE(fs::exists(ckpt(stopped, 4) + "/manifest.json"));
  EXPECT_FALSE(fs::exists(ckpt(stopped, 8)));
  EXPECT_FALSE(fs::exists(dir_.path() / "stopped/r/summary.json"));

  train(2, stopped);  // --resume auto
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("resumed from " + ckpt(stopped, 4) + " at step 4"), std::string::npos)
      << last_.output;
  EXPECT_EQ(last_.output.find("config changed"), std::string::npos) << "same config\n"
                                                                    << last_.output;
  const auto cmp =
      sh("/usr/bin/python3 " + kCompare + " " + ckpt(straight, 8) + " " + ckpt(stopped, 8));
  EXPECT_EQ(cmp.code, 0) << cmp.output;
  EXPECT_NE(cmp.output.find("0 differ"), std::string::npos) << cmp.output;

  // A finished run started again trains nothing.
  train(2, stopped);
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("already complete at step 8"), std::string::npos) << last_.output;
}

// The manifest records the build that wrote it; one written before that (no "agave" field)
// still resumes. The resume lists what the config changed, in one line.
TEST_F(Resume, ManifestRecordsTheBuildAndResumeListsConfigChanges) {
  const std::string out = (dir_.path() / "changed").string();
  train(2, out, "AGAVE_FAULT=stop:3:1");
  ASSERT_EQ(last_.code, 75) << last_.output;
  const std::string manifest = ckpt(out, 4) + "/manifest.json";
  nlohmann::json j;
  {
    std::ifstream in(manifest);
    j = nlohmann::json::parse(in);
  }
  const auto& b = agave::version::build_info();
  EXPECT_EQ(j.at("agave").at("version"), b.version);
  EXPECT_EQ(j.at("agave").at("commit"), b.commit);
  EXPECT_EQ(agave::checkpoint::ShardedCheckpoint::read_meta(ckpt(out, 4)).agave_commit, b.commit);
  j.erase("agave");  // as manifests were before builds were recorded
  std::ofstream(manifest) << j.dump(1) << "\n";
  EXPECT_EQ(agave::checkpoint::ShardedCheckpoint::read_meta(ckpt(out, 4)).agave_commit, "");

  train(2, out, "", "--set loss.lambda=4 --set train.grad_clip=50 --allow-config-change");
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("resumed from " + ckpt(out, 4) + " at step 4"), std::string::npos)
      << last_.output;
  EXPECT_EQ(agave::testing::count_of(last_.output, "config changed since step 4:"), 1u)
      << last_.output;
  EXPECT_NE(last_.output.find("[r] config changed since step 4: loss.lambda 2 → 4, "
                              "train.grad_clip "),
            std::string::npos)
      << last_.output;
  EXPECT_NE(last_.output.find(" → 50 (recorded in " + out + "/r/config_history.jsonl)\n"),
            std::string::npos)
      << last_.output;
}

std::string file_text(const std::string& path) {
  std::ostringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

std::vector<nlohmann::json> json_lines(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// A run folder is one config: a resume that would change what the run trained is refused with
// nothing written, continues only when asked, and then the change is on record; a finished
// run is never rewritten.
// A config.yaml that cannot be read is neither skipped nor overwritten, and is no config
// error: exit 1 (a supervisor may try again), one line naming the file.
TEST_F(Resume, AnUnreadableRecordedConfigIsAnErrorNotARefusal) {
  const std::string out = (dir_.path() / "unreadable").string();
  const std::string run = out + "/r";
  train(2, out, "AGAVE_FAULT=stop:3:1");
  ASSERT_EQ(last_.code, 75) << last_.output;
  fs::remove(run + "/config.yaml");
  fs::create_directory(run + "/config.yaml");
  train(2, out, "");
  EXPECT_EQ(last_.code, 1) << last_.output;
  EXPECT_NE(last_.output.find(run + "/config.yaml: cannot read the run's recorded config"),
            std::string::npos)
      << last_.output;
  EXPECT_TRUE(fs::is_directory(run + "/config.yaml"));
  EXPECT_FALSE(fs::exists(ckpt(out, 6)));
}

TEST_F(Resume, AConfigChangeToWhatWasTrainedIsRefusedUnlessAllowedAndIsRecorded) {
  const std::string out = (dir_.path() / "drift").string();
  const std::string run = out + "/r";
  train(2, out, "AGAVE_FAULT=stop:3:1");
  ASSERT_EQ(last_.code, 75) << last_.output;
  const std::string config_before = file_text(run + "/config.yaml");
  const std::string metrics_before = file_text(run + "/metrics.jsonl");

  train(2, out, "", "--set loss.lambda=4");
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(last_.output.find("agave_trainer: error: run r: " + run +
                              "/config.yaml differs from this config in what the run trained up "
                              "to step 4: loss.lambda 2 → 4; --set run.name=NEW for a new run "
                              "with this config, or --allow-config-change to continue"),
            std::string::npos)
      << last_.output;
  EXPECT_EQ(file_text(run + "/config.yaml"), config_before);
  EXPECT_EQ(file_text(run + "/metrics.jsonl"), metrics_before);
  EXPECT_FALSE(fs::exists(run + "/config_history.jsonl"));
  EXPECT_FALSE(fs::exists(run + "/failed.json"));
  EXPECT_FALSE(fs::exists(ckpt(out, 6)));

  train(2, out, "", "--set loss.lambda=4 --set eval.importance_samples=3 --allow-config-change");
  ASSERT_EQ(last_.code, 0) << last_.output;
  const auto history = json_lines(run + "/config_history.jsonl");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].at("step"), 4);
  EXPECT_EQ(history[0].at("result_changes"), nlohmann::json({"loss.lambda 2 → 4"}));
  EXPECT_EQ(history[0].at("other_changes"), nlohmann::json({"eval.importance_samples 2 → 3"}));
  EXPECT_EQ(history[0].at("allowed"), true);
  EXPECT_EQ(history[0].at("previous_config"), config_before);
  EXPECT_TRUE(history[0].contains("time"));
  EXPECT_NE(file_text(run + "/config.yaml").find("lambda: 4"), std::string::npos);
  int events = 0;
  for (const auto& j : json_lines(run + "/metrics.jsonl")) {
    if (j.value("event", "") == "config_change") {
      ++events;
      EXPECT_EQ(j.at("step"), 4);
    }
  }
  EXPECT_EQ(events, 1);

  // Finished: not rewritten, even when asked; what changes nothing is said and not applied.
  const std::string config_done = file_text(run + "/config.yaml");
  const std::string summary_done = file_text(run + "/summary.json");
  train(2, out, "", "--set loss.lambda=8 --set eval.importance_samples=3 --allow-config-change");
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(last_.output.find("up to step 8: loss.lambda 4 → 8; the run is finished and is not "
                              "rewritten: --set run.name=NEW"),
            std::string::npos)
      << last_.output;
  train(2, out, "", "--set loss.lambda=4");
  EXPECT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("the run is finished; its config.yaml is kept and these changes are "
                              "not applied: eval.importance_samples 3 → 2"),
            std::string::npos)
      << last_.output;
  EXPECT_NE(last_.output.find("already complete at step 8"), std::string::npos) << last_.output;
  EXPECT_EQ(file_text(run + "/config.yaml"), config_done);
  EXPECT_EQ(file_text(run + "/summary.json"), summary_done);
  EXPECT_EQ(json_lines(run + "/config_history.jsonl").size(), 1u);
}

TEST_F(Resume, OnADifferentNumberOfRanks) {
  const std::string out = (dir_.path() / "o").string();
  train(2, out, "AGAVE_FAULT=stop:1:0");
  ASSERT_EQ(last_.code, 75) << last_.output;
  train(1, out);
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("at step 2 (written by 2 rank(s), now 1)"), std::string::npos)
      << last_.output;
  EXPECT_TRUE(fs::exists(ckpt(out, 8) + "/shard-00000-of-00001.h5"));
}

TEST_F(Resume, WithAnotherGlobalBatchTheDataPositionIsMapped) {
  const std::string out = (dir_.path() / "o").string();
  train(2, out, "AGAVE_FAULT=stop:2:0");  // 3 steps of 8 images done
  ASSERT_EQ(last_.code, 75) << last_.output;
  train(1, out, "", "--set train.batch_size=4 --allow-config-change");
  ASSERT_EQ(last_.code, 0) << last_.output;
  // 24 images consumed = batch 6 of 4 images: nothing skipped, nothing seen twice.
  EXPECT_NE(last_.output.find("global batch 8 -> 4: data position epoch 0 batch 3 -> batch 6"),
            std::string::npos)
      << last_.output;
}

TEST_F(Resume, BadCheckpointsAreOneClearErrorAndNothingIsOverwritten) {
  const std::string out = (dir_.path() / "o").string();
  train(2, out, "AGAVE_FAULT=stop:1:0");
  ASSERT_EQ(last_.code, 75) << last_.output;
  const std::string latest = ckpt(out, 2);
  const auto before = fs::last_write_time(latest + "/manifest.json");

  train(2, out, "", "--set model.pixelcnn.nr_filters=16");
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(
      last_.output.find("was written with model.pixelcnn.nr_filters = 8 but the config has 16"),
      std::string::npos)
      << last_.output;

  train(2, out, "", "--resume never");
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(last_.output.find("already holds checkpoints of run r"), std::string::npos)
      << last_.output;

  // Flip one byte in a shard: the checksum catches it.
  const std::string shard = latest + "/shard-00001-of-00002.h5";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-100, std::ios::end);
    char c;
    f.get(c);
    f.seekp(-100, std::ios::end);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  train(2, out);
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(last_.output.find("shard-00001-of-00002.h5: SHA-256 mismatch"), std::string::npos)
      << last_.output;
  EXPECT_EQ(fs::last_write_time(latest + "/manifest.json"), before);
  EXPECT_FALSE(fs::exists(ckpt(out, 8)));
}

// model.pixelcnn.conditioning entered the signature on 2026-12-03, when the PixelCNN++ alone
// lost the conditioning stream it used to be fed zeros through: a checkpoint from before then
// resumes if it is an AGAVE one and is refused, saying why, if it is a PixelCNN++ alone.
TEST_F(Resume, CheckpointsFromBeforeTheConditioningKeyAreJudgedByTheirKind) {
  // What a checkpoint from before the key looks like: its manifest without it.
  auto drop_key = [](const std::string& checkpoint) {
    const std::string manifest = checkpoint + "/manifest.json";
    nlohmann::json j = nlohmann::json::parse(std::ifstream(manifest));
    EXPECT_EQ(j["model_signature"].erase("model.pixelcnn.conditioning"), 1u) << j.dump();
    std::ofstream(manifest) << j.dump(2);
  };
  const std::string agave = (dir_.path() / "agave").string();
  train(2, agave, "AGAVE_FAULT=stop:1:0");
  ASSERT_EQ(last_.code, 75) << last_.output;
  drop_key(ckpt(agave, 2));
  train(2, agave);
  EXPECT_EQ(last_.code, 0) << last_.output;
  EXPECT_TRUE(fs::exists(ckpt(agave, 8) + "/manifest.json")) << last_.output;

  const std::string alone = (dir_.path() / "alone").string();
  const std::string alone_config =
      dir_.write("alone.yaml", TinyConfig("r", alone, (dir_.path() / "shards").string())
                                   .seed(5)
                                   .batch_size(8)
                                   .phases({{"joint", 4}})
                                   .eval(2, 8, 8, 0)
                                   .checkpoint(0, 2)
                                   .yaml()) +
      " --set model.kind=pixelcnn_only";
  last_ = sh(std::string("AGAVE_FAULT=stop:1:0 ") + mpirun(1) + kTrainer + " " + alone_config);
  ASSERT_EQ(last_.code, 75) << last_.output;
  drop_key(ckpt(alone, 2));
  last_ = sh(mpirun(1) + kTrainer + " " + alone_config);
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(last_.output.find("was written with model.pixelcnn.conditioning = a stream fed zeros "
                              "(agave before 2026-12-03) but the config has none"),
            std::string::npos)
      << last_.output;
}

// The two conditioning streams have different parameters: a checkpoint of one is refused by a
// config of the other, saying which. A manifest's "f(z)" (written before per_layer existed) is
// the shared stream and resumes as such.
TEST_F(Resume, ACheckpointOfOneConditioningStreamRefusesTheOther) {
  const std::string out = (dir_.path() / "o").string();
  train(1, out, "AGAVE_FAULT=stop:3:0");
  ASSERT_EQ(last_.code, 75) << last_.output;
  ASSERT_TRUE(fs::exists(ckpt(out, 4) + "/manifest.json")) << last_.output;
  const std::string manifest = ckpt(out, 4) + "/manifest.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(manifest));
  EXPECT_EQ(j["model_signature"]["model.pixelcnn.conditioning"], "shared") << j.dump();

  train(1, out, "", "--set model.pixelcnn.conditioning=per_layer");
  EXPECT_EQ(last_.code, 2) << last_.output;
  EXPECT_NE(last_.output.find("was written with model.pixelcnn.conditioning = shared but the "
                              "config has per_layer"),
            std::string::npos)
      << last_.output;

  j["model_signature"]["model.pixelcnn.conditioning"] = "f(z)";
  std::ofstream(manifest) << j.dump(2);
  train(1, out);
  EXPECT_EQ(last_.code, 0) << last_.output;
  EXPECT_TRUE(fs::exists(ckpt(out, 8) + "/manifest.json")) << last_.output;
}

TEST_F(Resume, KeepsTheNewestAndIgnoresFoldersWithoutManifest) {
  const std::string out = (dir_.path() / "o").string();
  // An interrupted save leaves a folder without manifest: it must be ignored and removed.
  fs::create_directories(ckpt(out, 6));
  std::ofstream(ckpt(out, 6) + "/shard-00000-of-00002.h5") << "partial";
  train(2, out, "", "--set checkpoint.every=2");
  ASSERT_EQ(last_.code, 0) << last_.output;
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(out + "/r/checkpoints")) {
    left.push_back(e.path().filename().string());
  }
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"latest", "step-00000006", "step-00000008"}));
  EXPECT_TRUE(fs::exists(ckpt(out, 6) + "/manifest.json"));
  std::ifstream latest(out + "/r/checkpoints/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-00000008");
}

// fp32, free bits and IAF on, dropout 0.5, and buckets of ~2 KB so that bucket boundaries fall
// differently from the parameter tensors': every random number and every reduction that could
// depend on the rank split is exercised.
const std::string kSplitInvariant =
    "--set train.precision=fp32 --set cluster.bucket_mb=0.002 --set model.vae.free_bits=0.02 "
    "--set model.vae.iaf_steps=1";

// Weights and their EMA within 1e-5; the optimizer's moments (gradient magnitudes up to ~10³
// here, summed in a different order) within 1e-4.
void expect_fp32_close(const std::string& a, const std::string& b) {
  for (const auto& [prefix, tol] : {std::pair<std::string, std::string>{"model/", "1e-5"},
                                    {"ema/", "1e-5"},
                                    {"optim/", "1e-4"}}) {
    const auto cmp = sh("/usr/bin/python3 " + kCompare + " " + a + " " + b + " --tolerance " + tol +
                        " --only " + prefix);
    EXPECT_EQ(cmp.code, 0) << cmp.output;
    EXPECT_NE(cmp.output.find(", 0 differ"), std::string::npos) << cmp.output;
  }
}

TEST_F(Resume, TwoRanksWithHalfBatchesMatchOneRankWithTheWholeBatch) {
  const std::string one = (dir_.path() / "one").string();
  const std::string two = (dir_.path() / "two").string();
  train(1, one, "", kSplitInvariant);
  ASSERT_EQ(last_.code, 0) << last_.output;
  train(2, two, "", kSplitInvariant);
  ASSERT_EQ(last_.code, 0) << last_.output;
  expect_fp32_close(ckpt(one, 8), ckpt(two, 8));
}

TEST_F(Resume, ResumingOnAnotherRankCountMatchesTheStraightRunToFp32Tolerance) {
  const std::string straight = (dir_.path() / "straight").string();
  const std::string moved = (dir_.path() / "moved").string();
  train(2, straight, "", kSplitInvariant);
  ASSERT_EQ(last_.code, 0) << last_.output;
  train(2, moved, "AGAVE_FAULT=stop:3:0", kSplitInvariant);
  ASSERT_EQ(last_.code, 75) << last_.output;
  train(1, moved, "", kSplitInvariant);
  ASSERT_EQ(last_.code, 0) << last_.output;
  EXPECT_NE(last_.output.find("at step 4 (written by 2 rank(s), now 1)"), std::string::npos)
      << last_.output;
  expect_fp32_close(ckpt(straight, 8), ckpt(moved, 8));
}

TEST_F(Resume, SigusrToMpirunCheckpointsAndExits75) {
  const std::string out = (dir_.path() / "o").string();
  // Long enough to be running when the signal arrives.
  const std::string cfg = config(out);
  const fs::path d = dir_.path();
  // mpirun in the background; its pid and, at the end, its exit code land in files.
  const std::string job = "(" + mpirun(2) + kTrainer + " " + cfg +
                          " --set 'train.phases=[{name: joint, steps: 100000}]' > " +
                          (d / "log").string() + " 2>&1 & echo $! > " + (d / "pid").string() +
                          "; wait $!; echo $? > " + (d / "rc").string() + ") &";
  ASSERT_EQ(std::system(job.c_str()), 0);
  auto read_file = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  // Wait for training to be under way, then preempt.
  for (int i = 0; i < 1200 && read_file(d / "log").find("step 4/") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int pid = std::stoi(read_file(d / "pid"));
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  for (int i = 0; i < 1200 && read_file(d / "rc").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string text = read_file(d / "log");
  ASSERT_FALSE(read_file(d / "rc").empty()) << text;
  EXPECT_EQ(std::stoi(read_file(d / "rc")), 75) << text;
  EXPECT_NE(text.find("stop requested: checkpointing at step"), std::string::npos) << text;
  EXPECT_TRUE(checkpoint::ShardedCheckpoint::latest(out + "/r/checkpoints").has_value()) << text;
}

}  // namespace
}  // namespace agave::trainer
