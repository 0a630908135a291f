// agave_trainer training for real: MPI ranks under mpirun, HDF5 shards converted from Debian's
// Fashion-MNIST, a tiny model so each run takes seconds.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "monitoring/png_image.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"
#include "tests/common/trainer_suite.h"
#include "trainer/precision.h"
#include "version/version.h"

namespace agave::testing {
namespace {

namespace fs = std::filesystem;

class TrainingRun : public TrainerSuite {
 protected:
  std::string config(const std::string& extra = "") {
    return out_.write("tiny.yaml",
                      TinyConfig("tiny", out_.path().string() + "/runs", shards())
                          .phases({{"pretrain_vae", 3}, {"pretrain_pixelcnn", 3}, {"joint", 4}})
                          .eval(2, 8, 8, 2)
                          .log_every(2)
                          .prometheus_port(19464)
                          .append(extra)
                          .yaml());
  }
  fs::path run_dir(const std::string& name = "tiny") const { return out_.path() / "runs" / name; }

  static std::vector<nlohmann::json> jsonl(const fs::path& p) {
    std::vector<nlohmann::json> out;
    std::ifstream in(p);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  TempDir out_;
};

// docs/metrics.md, section "metrics.jsonl": each event's fields, `event` and `time` included
// (backticked names in the table's last column, outside parentheses, which hold values).
std::map<std::string, std::set<std::string>> documented_events() {
  std::ifstream in(std::string(AGAVE_SOURCE_DIR) + "/docs/metrics.md");
  std::map<std::string, std::set<std::string>> events;
  bool inside = false;
  const std::regex name("`([a-z_]+)`"), parenthesized(R"(\([^()]*\))");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) inside = line == "## metrics.jsonl";
    if (!inside || line.rfind("| `", 0) != 0) continue;
    const auto last_bar = line.rfind('|', line.size() - 2);
    const std::string event = line.substr(3, line.find('`', 3) - 3);
    const std::string fields = std::regex_replace(line.substr(last_bar), parenthesized, "");
    auto& set = events[event];
    set = {"event", "time"};
    for (std::sregex_iterator it(fields.begin(), fields.end(), name), end; it != end; ++it) {
      set.insert((*it)[1]);
    }
  }
  return events;
}

// Every line of a real run's metrics.jsonl has exactly the fields docs/metrics.md gives its
// event, its time in the one documented format; `expected` events all occur.
void expect_documented(const std::vector<nlohmann::json>& lines,
                       const std::set<std::string>& expected) {
  const auto docs = documented_events();
  ASSERT_EQ(docs.size(), 5u) << "docs/metrics.md: the metrics.jsonl table (train, skip, eval, "
                                "checkpoint, config_change) was not found";
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  std::set<std::string> seen;
  for (const auto& l : lines) {
    const std::string event = l.at("event");
    seen.insert(event);
    const auto doc = docs.find(event);
    ASSERT_NE(doc, docs.end()) << event << ": not in docs/metrics.md";
    std::set<std::string> keys;
    for (const auto& [key, value] : l.items()) keys.insert(key);
    EXPECT_EQ(keys, doc->second) << l;
    EXPECT_TRUE(std::regex_match(l.at("time").get<std::string>(), iso)) << l;
  }
  for (const auto& e : expected) EXPECT_TRUE(seen.count(e)) << e << " never written";
}

// The latent-use numbers of an evaluation of 8 images (issue 33) under `prefix`: the tiny
// model has one latent layer of 2 channels.
void expect_latent_use(const nlohmann::json& j, const std::string& prefix) {
  auto num = [&](const char* key) { return j.at(prefix + key).get<double>(); };
  EXPECT_TRUE(std::isfinite(num("pixel_bpd"))) << j;
  EXPECT_GT(num("pixel_bpd_stderr"), 0.0) << j;
  EXPECT_NEAR(num("pixel_bpd") + num("kl_bpd"), num("elbo_bpd"), 1e-6) << j;
  EXPECT_TRUE(std::isfinite(num("pixel_shuffled_bpd"))) << j;
  EXPECT_GE(num("pixel_shuffled_bpd_stderr"), 0.0) << j;
  // Every image was paired (4 a rank), so the mean difference is the difference of the means.
  EXPECT_EQ(j.at(prefix + "latent_use_images"), 8) << j;
  EXPECT_NEAR(num("pixel_shuffled_bpd") - num("pixel_bpd"), num("latent_use_bpd"), 1e-9) << j;
  EXPECT_GE(num("latent_use_bpd_stderr"), 0.0) << j;
  ASSERT_EQ(j.at(prefix + "kl_bpd_layers").size(), 1u) << j;
  EXPECT_NEAR(j.at(prefix + "kl_bpd_layers")[0].get<double>(), num("kl_bpd"), 1e-6) << j;
  EXPECT_EQ(j.at(prefix + "latent_channels"), 2) << j;
  EXPECT_GE(num("active_latent_channels"), 0) << j;
  EXPECT_LE(num("active_latent_channels"), 2) << j;
}

TEST_F(TrainingRun, TwoRanksTrainEveryPhaseAndStayInSync) {
  // A cache folder of the test's own: the precision probe measures rather than reads.
  const auto r = sh("XDG_CACHE_HOME=" + (out_.path() / "cache").string() + " " + mpirun(2) +
                    kTrainer + " " + config());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("phase pretrain_vae"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("phase pretrain_pixelcnn"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("phase joint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 replica(s) in sync after 10 step(s), 0 skipped"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[tiny] metrics at http://127.0.0.1:"), std::string::npos) << r.output;
  // Once, from rank 0: which build trains.
  EXPECT_EQ(count_of(r.output, agave::version::describe("agave_trainer") + "\n"), 1u) << r.output;
  // Step lines: UTC time first, then "[run] step N/T" as before, the fields, lr, elapsed, ETA
  // (estimated, "~", while phases not run yet are in it).
  const std::regex step_line(
      R"(\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[tiny\] step 2/10 pretrain_vae  loss .*  lr 0\.002  )"
      R"(elapsed [0-9.]+ s  ETA ~[0-9][^\n]* s\n)");
  EXPECT_TRUE(std::regex_search(r.output, step_line)) << r.output;
  // The final evaluation says what it reads and how long it should take, shows its progress
  // (images, rate) and how long it took.
  EXPECT_NE(
      r.output.find("[tiny] final eval step 10 begins: 8 test images at K=2, EMA weights, ETA ~"),
      std::string::npos)
      << r.output;
  EXPECT_TRUE(std::regex_search(
      r.output, std::regex(R"(\n\[tiny\] final eval step 10 8/8 \(100%\) [0-9.]+ img/s, took )")))
      << r.output;
  // The last lines name where the results are.
  const auto done = r.output.find("[tiny] done in ");
  ASSERT_NE(done, std::string::npos) << r.output;
  const std::string dir = run_dir().string();
  const std::string where = r.output.substr(done);
  EXPECT_NE(where.find("; the run's folder: " + dir + "\n"), std::string::npos) << where;
  EXPECT_NE(where.find("\n[tiny]   summary     " + dir + "/summary.json\n"), std::string::npos)
      << where;
  EXPECT_NE(where.find("\n[tiny]   pictures    " + dir + "/samples-step-00000010.png, " + dir +
                       "/reconstructions-step-00000010.png (the newest also as samples.png, "
                       "reconstructions.png)\n"),
            std::string::npos)
      << where;
  EXPECT_NE(where.find("\n[tiny]   checkpoint  " + dir + "/checkpoints/step-00000010\n"),
            std::string::npos)
      << where;
  EXPECT_NE(where.find("\n[tiny]   metrics     " + dir + "/metrics.jsonl\n"), std::string::npos)
      << where;
  EXPECT_EQ(count_of(where, "[tiny] "), 5u) << "nothing of the run after them:\n" << where;

  const auto lines = jsonl(run_dir() / "metrics.jsonl");
  int train = 0, eval = 0;
  for (const auto& l : lines) {
    if (l["event"] == "train") {
      ++train;
      const std::regex utc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
      EXPECT_TRUE(std::regex_match(l["time"].get<std::string>(), utc)) << l;
      EXPECT_DOUBLE_EQ(l["lr"].get<double>(), 0.002) << l;
      EXPECT_GE(l["elapsed_seconds"].get<double>(), 0.0) << l;
      EXPECT_GE(l["eta_seconds"].get<double>(), 0.0) << l;
      // At the first window the PixelCNN and joint phases (~25 VAE steps a step) and the final
      // evaluation are ahead: far more than the 8 steps left at the VAE's rate. At the last
      // step the final evaluation still is.
      const double eta = l["eta_seconds"].get<double>();
      if (l["step"] == 10) {
        EXPECT_GT(eta, 0.0) << l;
      } else if (l["step"] == 2) {
        EXPECT_GT(eta, 20 * l["step_seconds"].get<double>()) << l;
        EXPECT_TRUE(l["eta_estimated"].get<bool>()) << l;
      }
      EXPECT_TRUE(std::isfinite(l["loss_bpd"].get<double>())) << l;
      EXPECT_EQ(l["ranks"], 2);
      if (l["phase"] == "pretrain_vae") {
        EXPECT_EQ(l["pixel_bpd"], 0.0) << l;  // the PixelCNN is not run while pretraining the VAE
        EXPECT_GT(l["aux_bpd"].get<double>(), 0.0) << l;
      }
      if (l["phase"] == "joint") {
        EXPECT_GT(l["pixel_bpd"].get<double>(), 0.0) << l;
      }
    }
    if (l["event"] == "eval") {
      ++eval;
      EXPECT_EQ(l["images"], 8);
      // A tiny model after 10 steps is still near uniform (8 bits/dim), but finite and positive.
      EXPECT_GT(l["iw_bpd"].get<double>(), 0.5);
      EXPECT_LT(l["iw_bpd"].get<double>(), 12.0);
      expect_latent_use(l, "");
    }
  }
  EXPECT_EQ(train, 6);  // every 2 steps, and at the end of each phase (steps 3 and 6)
  EXPECT_EQ(eval, 1);

  std::ifstream in(run_dir() / "summary.json");
  const auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary["steps"], 10);
  EXPECT_EQ(summary["ranks"], 2);
  EXPECT_EQ(summary["agave"]["version"], agave::version::build_info().version);
  EXPECT_EQ(summary["agave"]["commit"], agave::version::build_info().commit);
  EXPECT_EQ(summary["agave"]["torch"], agave::version::build_info().torch);
  // The tiny config leaves train.precision at auto: rank 0 timed the probe in both precisions
  // (into the test's own cache folder) and took the faster.
  const auto& probe = summary.at("precision_probe");
  EXPECT_GT(probe.at("fp32_ms").get<double>(), 0) << probe;
  EXPECT_GT(probe.at("bf16_ms").get<double>(), 0) << probe;
  EXPECT_FALSE(probe.at("cached").get<bool>()) << probe;
  const agave::trainer::ProbeTimes times{probe["fp32_ms"].get<double>(),
                                         probe["bf16_ms"].get<double>()};
  const auto numerics = agave::trainer::choose_numerics(agave::trainer::Precision::kAuto,
                                                        torch::Device("cpu"), times);
  EXPECT_EQ(summary["numerics"], agave::trainer::describe(numerics));
  EXPECT_NE(r.output.find("[tiny] numerics " + agave::trainer::describe(numerics) +
                          " (auto: probe convolution forward + backward fp32 "),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(fs::exists(out_.path() / "cache" / "agave" / "precision.json"));
  EXPECT_TRUE(std::isfinite(summary["test_elbo_bpd"].get<double>()));
  EXPECT_LE(summary["test_iw_bpd"].get<double>(), summary["test_elbo_bpd"].get<double>() + 0.5);
  expect_latent_use(summary, "test_");

  // Sheets of 28×28 gray images shown at 84×84 (cells of 86 px with the gap): a row per z ~ p(z)
  // with f(z) and 2 samples given it (samples_per_latent 2), and x / f(z) / sample rows; the
  // final evaluation's sheets carry its step, samples.png is the newest.
  const auto samples = agave::monitoring::read_png((run_dir() / "samples.png").string());
  EXPECT_EQ(samples.channels, 1);
  EXPECT_EQ(samples.height, 2 * 86 + 2);
  EXPECT_EQ(samples.width, 3 * 86 + 2);
  const auto recon = agave::monitoring::read_png((run_dir() / "reconstructions.png").string());
  EXPECT_EQ(recon.height, 3 * 86 + 2);
  EXPECT_EQ(recon.width, 2 * 86 + 2);
  EXPECT_TRUE(fs::exists(run_dir() / "samples-step-00000010.png"));
  EXPECT_TRUE(fs::exists(run_dir() / "reconstructions-step-00000010.png"));
  EXPECT_TRUE(fs::exists(run_dir() / "config.yaml"));
}

// Each phase trains on its own loss settings, shown in its log line: λ and free bits from the
// run unless the phase sets them; no_aux is Eq. (6) (λ 1, no free bits, no aux term). Sheets are
// drawn at every evaluation.
TEST_F(TrainingRun, PhasesUseTheirOwnLambdaFreeBitsAndTerms) {
  const auto r =
      sh(mpirun(1) + kTrainer + " " + config() +
         " --set loss.lambda=4 --set model.vae.free_bits=0.1 --set eval.every=4" +
         " --set 'train.phases=[{name: pretrain_vae, steps: 2}, {name: joint, steps: 2," +
         " lambda: 8, terms: [pixel, kl]}, {name: no_aux, steps: 4}]'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("phase pretrain_vae: steps 0-1,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parameter tensors train on aux + KL, λ 4, free bits 0.1"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("on pixel + KL, λ 8, free bits 0.1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("phase no_aux: steps 4-7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("on pixel + KL, λ 1, free bits 0\n"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(run_dir() / "samples-step-00000004.png"));
  EXPECT_TRUE(fs::exists(run_dir() / "samples-step-00000008.png"));
}

// A bar and the step lines on one terminal (forced here: stdout and stderr into one pipe): every
// line starts at column 0, after a newline or after the bar cleared itself ("\r\033[K"), never
// after the bar's text.
TEST_F(TrainingRun, StepLinesDoNotDrawOverTheProgressBar) {
  const auto r = sh(mpirun(1) + kTrainer + " " + config() +
                    " --set monitoring.progress=bar --set eval.sample_images=0");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_NE(r.output.find("\rtrain tiny ["), std::string::npos) << "no bar drawn:\n" << r.output;
  size_t lines = 0;
  const std::regex utc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ )");
  for (size_t at = r.output.find("[tiny] "); at != std::string::npos;
       at = r.output.find("[tiny] ", at + 1)) {
    size_t p = at;  // where the line starts: before the time of a step line
    if (p >= 21 && std::regex_match(r.output.substr(p - 21, 21), utc)) p -= 21;
    const bool at_line_start = p == 0 || r.output[p - 1] == '\n' ||
                               (p >= 4 && r.output.compare(p - 4, 4, "\r\033[K") == 0);
    EXPECT_TRUE(at_line_start) << "a line drawn after the bar: ..."
                               << r.output.substr(p >= 80 ? p - 80 : 0, 120);
    ++lines;
  }
  EXPECT_GE(lines, 6u) << r.output;
}

// Under mpirun a rank's stderr is a pipe, yet at a terminal (here script(1)'s) the job's rank 0
// draws the bar there, for training and evaluation alike; without a terminal (a pipe, as in a
// Slurm log) the same command prints lines and no bar.
TEST_F(TrainingRun, UnderMpirunAtATerminalTheBarDrawsOnTheTerminal) {
  if (sh("command -v script").code != 0) GTEST_SKIP() << "no script(1)";
  const std::string command = mpirun(1) + kTrainer + " " + config() +
                              " --set monitoring.progress=auto --set eval.sample_images=0";
  auto r = sh("env -u CI script -qec '" + command + "' /dev/null < /dev/null");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\rtrain tiny ["), std::string::npos) << "no bar drawn:\n" << r.output;
  EXPECT_NE(r.output.find("\reval tiny step 10 ["), std::string::npos) << r.output;
  fs::remove_all(run_dir());
  r = sh("env -u CI " + command);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find('\r'), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n[tiny] final eval step 10 8/8 (100%) "), std::string::npos)
      << r.output;
}

TEST_F(TrainingRun, MonitoringPortZeroServesAFreePortAndPrintsIt) {
  const auto r = sh(mpirun(1) + kTrainer + " " + config() +
                    " --set monitoring.port=0 --set eval.sample_images=0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(
      r.output, std::regex(R"(\[tiny\] metrics at http://127\.0\.0\.1:[1-9]\d*/metrics)")))
      << r.output;
}

TEST_F(TrainingRun, NonFiniteLossOnOneRankSkipsTheStepOnAll) {
  const auto r = sh("AGAVE_FAULT=nan:4:1 " + mpirun(2) + kTrainer + " " + config() +
                    " --set eval.sample_images=0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("step 4: non-finite loss on 1 rank(s), skipped"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("2 replica(s) in sync after 9 step(s), 1 skipped"), std::string::npos)
      << r.output;
  expect_documented(jsonl(run_dir() / "metrics.jsonl"), {"train", "skip", "eval", "checkpoint"});
}

TEST_F(TrainingRun, NonFiniteStepsInARowAbortWithAClearError) {
  const auto r = sh("AGAVE_FAULT=nan:2:0 " + mpirun(2) + kTrainer + " " + config() +
                    " --set train.max_nonfinite_steps=1 --set eval.sample_images=0");
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 steps in a row had a non-finite loss or gradient (last at step 2: "
                          "non-finite loss on 1 rank(s))"),
            std::string::npos)
      << r.output;
}

TEST_F(TrainingRun, ADeadRankFailsTheJobInBoundedTime) {
  const auto start = std::chrono::steady_clock::now();
  const auto r = sh("AGAVE_FAULT=exit:3:1 " + mpirun(2) + kTrainer + " " + config() +
                    " --set cluster.timeout_seconds=20 --set eval.sample_images=0");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_LT(seconds, 90) << r.output;
  // mpirun names the process that died: job rank 1 with its exit code.
  EXPECT_NE(r.output.find(",1]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Exit code:    9"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run_dir() / "summary.json"));
}

TEST_F(TrainingRun, SweepTrainsEveryPointOnItsGroup) {
  const auto r = sh(mpirun(2) + kTrainer + " " +
                    config("sweep:\n  ranks_per_run: 1\n  grid:\n    loss.lambda: [1, 4]\n") +
                    " --set eval.sample_images=0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "1 replica(s) in sync after 10 step(s)"), 2u) << r.output;
  // The sweep's table at the end, and its CSV.
  EXPECT_NE(r.output.find("sweep summary: " + (out_.path() / "runs/tiny").string() + "/sweep.csv"),
            std::string::npos)
      << r.output;
  std::ifstream csv(run_dir() / "sweep.csv");
  std::string header, row1, row2, extra;
  std::getline(csv, header);
  std::getline(csv, row1);
  std::getline(csv, row2);
  EXPECT_NE(header.find("lambda"), std::string::npos) << header;
  EXPECT_NE(row1.find("lambda=1"), std::string::npos) << row1;
  EXPECT_NE(row2.find("lambda=4"), std::string::npos) << row2;
  EXPECT_FALSE(std::getline(csv, extra)) << extra;
  // The table: λ as its one column, the constants once above it (not empty columns).
  EXPECT_NE(r.output.find("\nconstants: aux_resolution=7, color_bins=32\nrun "), std::string::npos)
      << r.output;
  const auto table = r.output.find("\nrun ");
  ASSERT_NE(table, std::string::npos) << r.output;
  const std::string header_line =
      r.output.substr(table + 1, r.output.find('\n', table + 1) - table - 1);
  EXPECT_NE(header_line.find("lambda"), std::string::npos) << header_line;
  EXPECT_EQ(header_line.find("aux"), std::string::npos) << header_line;
  // The plot, written at the sweep's end by rank 0.
  std::ifstream png(run_dir() / "sweep.png", std::ios::binary);
  std::string magic(8, '\0');
  ASSERT_TRUE(png.read(magic.data(), 8)) << "no sweep.png\n" << r.output;
  EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_NE(r.output.find("sweep plot: " + (run_dir() / "sweep.png").string()), std::string::npos)
      << r.output;
  for (const std::string point : {"lambda=1", "lambda=4"}) {
    std::ifstream in(run_dir() / point / "summary.json");
    ASSERT_TRUE(in) << point;
    const auto summary = nlohmann::json::parse(in);
    EXPECT_EQ(summary["labels"]["lambda"], point.substr(7)) << summary;
    EXPECT_EQ(summary["ranks"], 1);
    EXPECT_FALSE(fs::exists(run_dir() / point / "samples.png"));
  }
}

// gnuplot failing for real (its output path is a folder) costs the picture, not the sweep.
TEST_F(TrainingRun, ASweepWhosePlotFailsWarnsInOneLineAndSucceeds) {
  fs::create_directories(run_dir() / "sweep.png");
  const auto r = sh(mpirun(2) + kTrainer + " " +
                    config("sweep:\n  ranks_per_run: 1\n  grid:\n    loss.lambda: [1, 4]\n") +
                    " --set eval.sample_images=0 --set train.phases='[{name: joint, steps: 2}]'");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "agave_trainer: warning: " + (run_dir() / "sweep.png").string() +
                                   " not written: sweep plot: gnuplot failed"),
            1u)
      << r.output;
  EXPECT_TRUE(fs::exists(run_dir() / "sweep.csv"));
}

TEST_F(TrainingRun, AnErrorOnOneRankEndsTheJobInsteadOfHanging) {
  const auto start = std::chrono::steady_clock::now();
  // The default collective timeout (300 s) must not be what ends it: the failing rank aborts.
  const auto r = sh("AGAVE_FAULT=throw:3:1 " + mpirun(2) + kTrainer + " " + config() +
                    " --set eval.sample_images=0");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_LT(seconds, 60) << r.output;
  EXPECT_NE(r.output.find("agave_trainer: error: rank 1: AGAVE_FAULT: an error on this rank alone "
                          "at step 3"),
            std::string::npos)
      << r.output;
}

TEST_F(TrainingRun, AFailingSweepRunIsReportedAndTheSweepGoesOn) {
  // Both points see a non-finite loss at step 2; only the first gives up after one.
  const auto r = sh("AGAVE_FAULT=nan:2:0 " + mpirun(2) + kTrainer + " " +
                    config("sweep:\n  ranks_per_run: 2\n  grid:\n    train.max_nonfinite_steps: "
                           "[1, 5]\n") +
                    " --set eval.sample_images=0");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("run max_nonfinite_steps=1 failed; the sweep goes on with the next run"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("2 replica(s) in sync after 9 step(s), 1 skipped"), std::string::npos)
      << r.output;
  EXPECT_TRUE(fs::exists(run_dir() / "max_nonfinite_steps=5" / "summary.json"));
  EXPECT_FALSE(fs::exists(run_dir() / "max_nonfinite_steps=1" / "summary.json"));
  // The table lists the finished run and names the failed one with its reason.
  std::string failed_line;
  std::istringstream lines(r.output);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind("max_nonfinite_steps=1 ", 0) == 0) failed_line = l;
  }
  EXPECT_NE(
      failed_line.find("FAILED: run max_nonfinite_steps=1: 1 steps in a row had a non-finite"),
      std::string::npos)
      << r.output;
}

TEST_F(TrainingRun, EachPhaseTrainsOnlyItsParameterGroups) {
  const auto r = sh(mpirun(2) + kTrainer + " " + config("checkpoint: {every: 1, keep: 20}\n") +
                    " --set eval.sample_images=0");
  ASSERT_EQ(r.code, 0) << r.output;
  auto ckpt = [&](int step) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "checkpoints/step-%08d", step);
    return run_dir() / buf;
  };
  // Steps 1-3 pretrain the VAE, 4-6 the PixelCNN, 7-10 train both.
  struct Case {
    int from, to;
    std::string prefix;
    bool trains;
  };
  for (const auto& c : std::vector<Case>{{1, 3, "model/pixelcnn.", false},
                                         {1, 3, "optim/pixelcnn.", false},
                                         {1, 3, "model/vae.", true},
                                         {3, 6, "model/vae.", false},
                                         {3, 6, "optim/vae.", false},
                                         {3, 6, "model/pixelcnn.", true},
                                         {6, 10, "model/vae.", true},
                                         {6, 10, "model/pixelcnn.", true}}) {
    const auto [compared, differ] = changed_tensors(ckpt(c.from), ckpt(c.to), c.prefix);
    ASSERT_GT(compared, 10) << c.prefix;
    if (c.trains) {
      // Nearly every tensor moves (a few, like the top VAE layer's unused prior, may not).
      EXPECT_GT(differ, compared * 3 / 4) << c.prefix << " steps " << c.from << "-" << c.to;
    } else {
      EXPECT_EQ(differ, 0) << c.prefix << " steps " << c.from << "-" << c.to;
    }
  }
}

TEST_F(TrainingRun, QuickstartImprovesTheTestBitsPerDim) {
  // The README's quickstart config as shipped, shortened: its phases cut to 100 steps and a
  // small evaluation of the raw weights (an EMA lags far behind after so few steps), with an
  // evaluation of the initial model as the baseline.
  const auto r =
      sh(mpirun(2) + kTrainer + " " + AGAVE_SOURCE_DIR + "/configs/quickstart.yaml" +
         " --set run.output_dir=" + (out_.path() / "runs").string() +
         " --set data.shards=" + shards() +
         " --set 'train.phases=[{name: pretrain_vae, steps: 40}, {name: pretrain_pixelcnn, steps: "
         "25}, {name: joint, steps: 5}]'" +
         " --set eval.at_start=true --set eval.subset=64 --set eval.final_subset=64 --set "
         "eval.importance_samples=4"
         " --set eval.use_ema=false --set eval.sample_images=0 --set checkpoint.every=0"
         " --set monitoring.prometheus=false");
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<nlohmann::json> evals;
  for (const auto& l : jsonl(run_dir("quickstart") / "metrics.jsonl")) {
    if (l["event"] == "eval") evals.push_back(l);
  }
  ASSERT_EQ(evals.size(), 2u) << r.output;
  EXPECT_EQ(evals.front()["step"], 0);
  EXPECT_EQ(evals.back()["step"], 70);
  const double before = evals.front()["iw_bpd"].get<double>();
  const double after = evals.back()["iw_bpd"].get<double>();
  // The data-initialised model starts at ≈ 5.5 bits/dim; 70 steps take it below 4.5.
  EXPECT_GT(before, 5.0) << r.output;
  EXPECT_LT(after, before - 1.0) << "test IW bits/dim " << before << " -> " << after;
}

TEST_F(TrainingRun, AProfiledStepHasNoHostSyncs) {
  // Steps 3-6 cross from VAE pretraining into the PixelCNN phase; the trace must show real work
  // and no aten::item (a device->host sync on a GPU): the host reads each step's numbers in one
  // copy. (A repeat_interleave in the transposed conv once cost 8 syncs per step.)
  const auto r = sh(mpirun(2) + kTrainer + " " + config() +
                    " --set monitoring.profile_steps=4 --set eval.sample_images=0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("profile of steps 3-6: " + (run_dir() / "profile-rank0.json").string()),
            std::string::npos)
      << r.output;
  std::ifstream in(run_dir() / "profile-rank0.json");
  ASSERT_TRUE(in);
  const auto trace = nlohmann::json::parse(in);
  const auto& events = trace.is_array() ? trace : trace.at("traceEvents");
  std::map<std::string, int> count;
  for (const auto& e : events) count[e.value("name", "")] += 1;
  EXPECT_GT(count["aten::convolution"], 20);
  EXPECT_GT(count["autograd::engine::evaluate_function: ConvolutionBackward0"], 20);
  EXPECT_EQ(count["aten::item"], 0);
  EXPECT_EQ(count["aten::_local_scalar_dense"], 0);
}

}  // namespace
}  // namespace agave::testing
