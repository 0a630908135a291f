// Sweep summaries: summary.json of each run -> sweep.csv, and the sweep plot.
#include "monitoring/sweep_summary.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace agave::monitoring {
namespace {

namespace fs = std::filesystem;

// The test's stand-in for the trainer's atomic write: the CSV text is what is tested here.
void write_whole(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class SweepSummary : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("agave-sweep-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A run directory as the trainer leaves it (summary.json fields of trainer/trainer.cpp).
  void run(const std::string& lambda, double elbo, double iw, double kl, int64_t steps) {
    const std::string name = "lambda=" + lambda + ",aux_resolution=16";
    fs::create_directories(dir_ / name);
    nlohmann::json s = {{"run", name},           {"steps", steps},    {"skipped_steps", 0},
                        {"test_elbo_bpd", elbo}, {"test_iw_bpd", iw}, {"test_kl_bpd", kl},
                        {"seconds", 12.5},       {"ranks", 1}};
    s["labels"]["lambda"] = lambda;
    s["labels"]["aux_resolution"] = "16";
    // Summaries since issue 15 also hold the aux term, the VAE bound, the weights and the image
    // count; lambda 4 stands for an older summary without them (NaN, empty, 0 in the table).
    if (lambda != "4") {
      s["test_aux_bpd"] = kl * 2;
      s["test_vae_bpd"] = kl * 3;
      s["test_weights"] = "ema";
      s["test_images"] = 10000;
      // Since issue 33 also the latent use.
      s["test_pixel_bpd"] = elbo - kl;
      s["test_pixel_shuffled_bpd"] = elbo - kl + 0.25;
      s["test_latent_use_bpd"] = 0.25;
      s["test_latent_use_bpd_stderr"] = 0.0625;
      s["test_kl_bpd_layers"] = {kl / 2, kl / 2};
      s["test_active_latent_channels"] = 3;
      s["test_latent_channels"] = 16;
    }
    std::ofstream(dir_ / name / "summary.json") << s.dump(2);
  }

  // A run of a sweep over any keys: its name and labels from `labels`, in that order.
  void run_of(const std::vector<std::pair<std::string, std::string>>& labels, double iw,
              double kl) {
    std::string name;
    for (const auto& [k, v] : labels) name += (name.empty() ? "" : ",") + k + "=" + v;
    fs::create_directories(dir_ / name);
    nlohmann::json s = {
        {"run", name},       {"steps", 10},       {"skipped_steps", 0}, {"test_elbo_bpd", iw + 0.1},
        {"test_iw_bpd", iw}, {"test_kl_bpd", kl}, {"seconds", 1.0},     {"ranks", 1}};
    for (const auto& [k, v] : labels) s["labels"][k] = v;
    std::ofstream(dir_ / name / "summary.json") << s.dump(2);
  }

  // Width and height of a PNG from its IHDR chunk; {0, 0} when it is not a PNG.
  static std::pair<uint32_t, uint32_t> png_size(const std::string& bytes) {
    if (bytes.size() < 24 || bytes.substr(0, 8) != std::string("\x89PNG\r\n\x1a\n", 8)) {
      return {0, 0};
    }
    auto be32 = [&](size_t at) {
      return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
             (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
    };
    return {be32(16), be32(20)};
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
};

TEST_F(SweepSummary, CsvHasOneRowPerFinishedRunSortedByLambda) {
  run("12", 3.5, 3.4, 0.05, 1000);
  run("2", 3.25, 3.125, 0.5, 1000);
  run("4", 3.3, 3.2, 0.2, 999);
  fs::create_directories(dir_ / "lambda=8,aux_resolution=16");  // still training: no summary
  std::ofstream(dir_ / "notes.txt") << "not a run\n";

  const auto rows = write_sweep_summary(dir_.string(), write_whole);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(read(dir_ / "sweep.csv"),
            "run,lambda,aux_resolution,color_bins,test_elbo_bpd,test_iw_bpd,test_kl_bpd,"
            "test_aux_bpd,test_vae_bpd,weights,test_images,steps,test_pixel_bpd,"
            "test_pixel_shuffled_bpd,test_latent_use_bpd,test_latent_use_bpd_stderr,"
            "test_kl_bpd_layers,test_active_latent_channels,test_latent_channels\n"
            "\"lambda=2,aux_resolution=16\",2,16,,3.25,3.125,0.5,1,1.5,ema,10000,1000,2.75,3,0.25,"
            "0.0625,0.25;0.25,3,16\n"
            "\"lambda=4,aux_resolution=16\",4,16,,3.3,3.2,0.2,nan,nan,,0,999,nan,nan,nan,nan,,nan,"
            "nan\n"
            "\"lambda=12,aux_resolution=16\",12,16,,3.5,3.4,0.05,0.1,0.15000000000000002,ema,10000,"
            "1000,3.45,3.7,0.25,0.0625,0.025;0.025,3,16\n");
}

TEST_F(SweepSummary, BrokenSummaryNamesTheFile) {
  run("2", 3.25, 3.125, 0.5, 1000);
  fs::create_directories(dir_ / "bad");
  std::ofstream(dir_ / "bad" / "summary.json") << "{\"run\": \"bad\", \"steps\": 3}";
  try {
    read_sweep(dir_.string());
    FAIL() << "a summary without test_elbo_bpd was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "bad" / "summary.json").string()),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(read_sweep((dir_ / "missing").string()), std::runtime_error);
}

// What a run killed while writing its summary (before writes were atomic) left behind: the
// table still lists every other run, and names the broken one.
TEST_F(SweepSummary, TruncatedSummaryIsReportedForItsRunAndTheOthersStayInTheTable) {
  run("2", 3.25, 3.125, 0.5, 1000);
  run("4", 3.3, 3.2, 0.2, 999);
  fs::create_directories(dir_ / "lambda=8");
  std::ofstream(dir_ / "lambda=8" / "summary.json") << "{\"run\": \"lambda=8\", \"test_el";
  std::vector<std::pair<std::string, std::string>> unreadable;
  const auto rows = write_sweep_summary(dir_.string(), write_whole, &unreadable);
  EXPECT_EQ(rows.size(), 2u);
  ASSERT_EQ(unreadable.size(), 1u);
  EXPECT_EQ(unreadable[0].first, "lambda=8");
  EXPECT_NE(unreadable[0].second.find((dir_ / "lambda=8" / "summary.json").string()),
            std::string::npos)
      << unreadable[0].second;
}

TEST_F(SweepSummary, PlotIsAPngOfTheSweep) {
  if (system("command -v gnuplot > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gnuplot is missing (Debian package gnuplot-nox)";
  }
  run("1", 3.6, 3.5, 0.9, 100);
  run("2", 3.5, 3.42, 0.5, 100);
  run("4", 3.45, 3.4, 0.25, 100);
  run("12", 3.5, 3.45, 0.05, 100);
  const auto png = (dir_ / "sweep.png").string();
  plot_sweep(read_sweep(dir_.string()), png, "test sweep");
  const std::string bytes = read(png);
  ASSERT_GT(bytes.size(), 5000u) << "a 1200x500 plot with two panels is more than a few bytes";
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // Width and height from the IHDR chunk.
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  EXPECT_EQ(be32(16), 1200u);
  EXPECT_EQ(be32(20), 500u);
  // Nothing of gnuplot's input is left beside the picture.
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_FALSE(e.path().filename().string().rfind("sweep.png.", 0) == 0) << e.path();
  }
  EXPECT_THROW(plot_sweep({}, png), std::runtime_error);
}

}  // namespace
}  // namespace agave::monitoring

namespace agave::monitoring {
namespace {

bool have_gnuplot() { return system("command -v gnuplot > /dev/null 2>&1") == 0; }

// Fig. 5's sweep: two swept keys, each plotted against with one line per value of the other.
TEST_F(SweepSummary, PlotHasARowOfPanelsPerSweptKey) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is missing (Debian package gnuplot-nox)";
  for (const std::string res : {"8", "16", "32"}) {
    for (const std::string bins : {"32", "256"}) {
      run_of({{"aux_resolution", res}, {"color_bins", bins}, {"seed", "1"}}, 3 + res.size() * 0.1,
             bins.size() * 0.2);
    }
  }
  const auto rows = read_sweep(dir_.string());
  EXPECT_EQ(swept_keys(rows), (std::vector<std::string>{"aux_resolution", "color_bins"}));
  const auto png = (dir_ / "sweep.png").string();
  plot_sweep(rows, png, "fig5");
  EXPECT_EQ(png_size(read(png)), std::make_pair(1200u, 1000u)) << "two rows of 1200x500";
  // A key that is not a number (a sweep over phases' names, optimizers, ...) gets one tick
  // per value.
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  run_of({{"optimizer", "adam"}}, 3.2, 0.4);
  run_of({{"optimizer", "adamax"}}, 3.1, 0.5);
  plot_sweep(read_sweep(dir_.string()), png, "optimizers");
  EXPECT_EQ(png_size(read(png)), std::make_pair(1200u, 500u));
}

TEST_F(SweepSummary, PlotFailureIsOneLineNamingGnuplot) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is missing (Debian package gnuplot-nox)";
  run("1", 3.6, 3.5, 0.9, 100);
  run("2", 3.5, 3.42, 0.5, 100);
  fs::create_directories(dir_ / "sweep.png");  // gnuplot cannot write its output here
  try {
    plot_sweep(read_sweep(dir_.string()), (dir_ / "sweep.png").string(), "t");
    FAIL() << "a plot gnuplot could not write was reported as drawn";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("gnuplot failed"), std::string::npos) << what;
  }
}

// The columns are the keys that tell runs apart; what all runs share is said once above them.
TEST_F(SweepSummary, TableHasAColumnPerSweptKeyAndTheConstantsAbove) {
  run("2", 3.25, 3.125, 0.5, 1000);  // lambda swept, aux_resolution=16 in every run
  run("12", 3.5, 3.4, 0.05, 1000);
  const auto table = sweep_table(read_sweep(dir_.string()), {{"color_bins", "32"}});
  std::istringstream lines(table);
  std::string constants, header, first, second, extra;
  std::getline(lines, constants);
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(constants, "constants: color_bins=32, aux_resolution=16");
  EXPECT_EQ(header.substr(0, 3), "run");
  EXPECT_NE(header.find("lambda"), std::string::npos) << header;
  EXPECT_EQ(header.find("aux"), std::string::npos) << "a constant as a column: " << header;
  EXPECT_EQ(header.find("bins"), std::string::npos) << "a constant as a column: " << header;
  EXPECT_EQ(first.substr(0, 27), "lambda=2,aux_resolution=16 ") << first;
  EXPECT_NE(first.find("      2     3.2500     3.1250     0.5000"), std::string::npos) << first;
  EXPECT_EQ(second.substr(0, 28), "lambda=12,aux_resolution=16 ") << second;
  EXPECT_FALSE(std::getline(lines, extra)) << extra;
  // Nothing constant: no constants line.
  EXPECT_EQ(sweep_table({}, {}).substr(0, 3), "run");
}

}  // namespace
}  // namespace agave::monitoring
