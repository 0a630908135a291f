// The exporter over real HTTP: names, labels and values as docs/metrics.md documents them.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "monitoring/metrics_exporter.h"
#include "tests/common/ports.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/monitoring/http_client.h"
#include "version/version.h"

namespace agave::monitoring {
namespace {

using agave::testing::BusyPort;
using testing::http_get;
using testing::parse_exposition;
using testing::Sample;

// Every family docs/metrics.md documents; the exporter must expose exactly these.
const std::set<std::string> kFamilies = {"agave_train_loss_bpd",
                                         "agave_kl_nats",
                                         "agave_train_step",
                                         "agave_images_per_second",
                                         "agave_step_seconds",
                                         "agave_compute_seconds",
                                         "agave_allreduce_seconds",
                                         "agave_data_wait_seconds",
                                         "agave_steps_total",
                                         "agave_nonfinite_steps_skipped_total",
                                         "agave_eval_aux_bpd",
                                         "agave_eval_nll_bpd",
                                         "agave_eval_kl_bpd",
                                         "agave_eval_step",
                                         "agave_eval_importance_samples",
                                         "agave_eval_pixel_bpd",
                                         "agave_eval_latent_use_bpd",
                                         "agave_eval_kl_layer_bpd",
                                         "agave_eval_active_latent_channels",
                                         "agave_eval_latent_channels",
                                         "agave_checkpoint_seconds",
                                         "agave_checkpoint_bytes",
                                         "agave_phase",
                                         "agave_build_info"};

MonitoringOptions loopback(int64_t port = 0) {
  MonitoringOptions o;
  o.bind = "127.0.0.1";
  o.port = port;  // 0: the kernel picks a free port, so parallel tests never collide
  return o;
}

RunLabels labels(const std::string& run, const std::string& lambda, int rank = 0) {
  return {run, lambda, "16", "32", rank};
}

StepRecord step_record(int64_t step) {
  StepRecord r;
  r.step = step;
  r.phase = "joint";
  r.loss_bpd = 4.25;
  r.pixel_bpd = 3.5;
  r.aux_bpd = 0.5;
  r.kl_bpd = 0.25;
  r.kl_nats = 530.0;
  r.images_per_second = 1234.5;
  r.step_seconds = 0.2;
  r.compute_seconds = 0.15;
  r.allreduce_seconds = 0.03;
  r.data_wait_seconds = 0.02;
  r.steps_done = step;
  r.skipped_steps_total = 1;
  r.window_steps = 10;
  return r;
}

// An evaluation with every field set: a model of two latent layers.
EvalRecord eval_record() {
  EvalRecord r{100, 4.5, 4.4, 0.3, 0.2, 0.5, 64};
  r.pixel_bpd = 4.2;
  r.pixel_shuffled_bpd = 4.35;
  r.latent_use_bpd = 0.15;
  r.kl_bpd_layers = {0.25, 0.05};
  r.active_latent_channels = 5;
  r.latent_channels = 16;
  return r;
}

std::vector<Sample> scrape(int port) {
  const auto r = http_get(port, "/metrics");
  EXPECT_EQ(r.status, 200) << "GET /metrics on port " << port;
  return parse_exposition(r.body);
}

// The value of the one series with `name` whose labels include all of `want`; fails otherwise.
double value(const std::vector<Sample>& samples, const std::string& name,
             const std::map<std::string, std::string>& want) {
  const Sample* found = nullptr;
  int matches = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : want) {
      auto it = s.labels.find(k);
      ok = ok && it != s.labels.end() && it->second == v;
    }
    if (ok) {
      found = &s;
      ++matches;
    }
  }
  EXPECT_EQ(matches, 1) << name << " series matching the labels";
  return found ? found->value : NAN;
}

std::set<std::string> typed_families(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    // prometheus-cpp adds its own exposer_* families; ours are the agave_ ones.
    if (line.rfind("# TYPE agave_", 0) == 0) out.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

TEST(MetricsExporter, WhatIsNotMeasuredYetIsNaNNotZero) {
  MetricsExporter ex(loopback(), labels("lambda=2", "2"));
  const auto before = scrape(ex.port());
  for (const char* bound : {"elbo", "iw", "vae"}) {
    EXPECT_TRUE(std::isnan(value(before, "agave_eval_nll_bpd", {{"bound", bound}}))) << bound;
  }
  EXPECT_TRUE(std::isnan(value(before, "agave_train_loss_bpd", {{"term", "total"}})));
  EXPECT_TRUE(std::isnan(value(before, "agave_images_per_second", {})));
  EXPECT_TRUE(std::isnan(value(before, "agave_checkpoint_bytes", {})));
  EXPECT_EQ(value(before, "agave_train_step", {}), 0);  // a step count: 0 is a measurement
  for (const char* z : {"matched", "shuffled"}) {
    EXPECT_TRUE(std::isnan(value(before, "agave_eval_pixel_bpd", {{"z", z}}))) << z;
  }
  for (const char* name : {"agave_eval_latent_use_bpd", "agave_eval_active_latent_channels",
                           "agave_eval_latent_channels"}) {
    EXPECT_TRUE(std::isnan(value(before, name, {}))) << name;
  }
  ex.record_eval({100, 4.5, 4.4, 0.3, 0.2, 0.5, 64});
  EXPECT_DOUBLE_EQ(value(scrape(ex.port()), "agave_eval_nll_bpd", {{"bound", "iw"}}), 4.4);
}

TEST(MetricsExporter, ServesDocumentedNamesLabelsAndValues) {
  MetricsExporter ex(loopback(), labels("lambda=2", "2"));
  ASSERT_GT(ex.port(), 0);
  EXPECT_EQ(ex.url(), "http://127.0.0.1:" + std::to_string(ex.port()) + "/metrics");
  ex.record_step(step_record(100));
  ex.record_eval(eval_record());
  ex.record_checkpoint(1.5, 2.5e6);

  const auto body = http_get(ex.port(), "/metrics").body;
  EXPECT_EQ(typed_families(body), kFamilies);
  const auto s = parse_exposition(body);
  const std::map<std::string, std::string> run = {{"run", "lambda=2"},
                                                  {"lambda", "2"},
                                                  {"aux_resolution", "16"},
                                                  {"color_bins", "32"},
                                                  {"rank", "0"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto l = run;
    l[k] = v;
    return l;
  };
  // Each series of the run: family, labels, value and the tolerance (0: the exact double).
  struct Series {
    const char* name;
    std::map<std::string, std::string> labels;
    double value;
    double tolerance = 0;
  };
  const std::vector<Series> expected = {
      {"agave_train_loss_bpd", with("term", "pixel"), 3.5},
      {"agave_train_loss_bpd", with("term", "aux"), 0.5},
      {"agave_train_loss_bpd", with("term", "kl"), 0.25},
      {"agave_train_loss_bpd", with("term", "total"), 4.25},
      {"agave_kl_nats", run, 530.0},
      {"agave_train_step", run, 100},
      {"agave_images_per_second", run, 1234.5},
      // A window of 10 steps: count and sum are true per-step totals.
      {"agave_step_seconds_count", run, 10},
      {"agave_step_seconds_sum", run, 2.0, 1e-9},
      {"agave_step_seconds_bucket", with("le", "0.1"), 0},
      {"agave_step_seconds_bucket", with("le", "0.25"), 10},
      {"agave_compute_seconds_sum", run, 1.5, 1e-9},
      {"agave_allreduce_seconds_sum", run, 0.3, 1e-9},
      {"agave_data_wait_seconds_sum", run, 0.2, 1e-9},
      {"agave_steps_total", run, 100},
      {"agave_nonfinite_steps_skipped_total", run, 1},
      {"agave_eval_nll_bpd", with("bound", "elbo"), 4.5},
      {"agave_eval_nll_bpd", with("bound", "iw"), 4.4},
      {"agave_eval_nll_bpd", with("bound", "vae"), 0.5},
      {"agave_eval_aux_bpd", run, 0.2},
      {"agave_eval_kl_bpd", run, 0.3},
      {"agave_eval_step", run, 100},
      {"agave_eval_importance_samples", run, 64},
      {"agave_eval_pixel_bpd", with("z", "matched"), 4.2},
      {"agave_eval_pixel_bpd", with("z", "shuffled"), 4.35},
      {"agave_eval_latent_use_bpd", run, 0.15},
      {"agave_eval_kl_layer_bpd", with("layer", "0"), 0.25},
      {"agave_eval_kl_layer_bpd", with("layer", "1"), 0.05},
      {"agave_eval_active_latent_channels", run, 5},
      {"agave_eval_latent_channels", run, 16},
      {"agave_checkpoint_seconds_count", run, 1},
      {"agave_checkpoint_seconds_sum", run, 1.5},
      {"agave_checkpoint_bytes", run, 2.5e6},
      {"agave_phase", with("phase", "joint"), 1},
  };
  for (const Series& e : expected) {
    if (e.tolerance > 0) {
      EXPECT_NEAR(value(s, e.name, e.labels), e.value, e.tolerance) << e.name;
    } else {
      EXPECT_DOUBLE_EQ(value(s, e.name, e.labels), e.value) << e.name;
    }
  }
  // The process's series, without run labels: its build, and its memory read at the scrape.
  const auto& b = version::build_info();
  EXPECT_DOUBLE_EQ(
      value(s, "agave_build_info",
            {{"version", b.version}, {"commit", b.commit}, {"torch", b.torch}, {"cuda", b.cuda}}),
      1);
  EXPECT_NEAR(value(s, "process_resident_memory_bytes", {}), resident_memory_bytes(), 64e6);
  EXPECT_GT(value(s, "process_resident_memory_bytes", {}), 1e6);
  for (const auto& sample : s) {
    if (sample.name == "process_resident_memory_bytes") {
      EXPECT_TRUE(sample.labels.empty());
    }
  }

  // Only the run's labels (+ term/bound/z/layer/phase/le): nothing per step or per time (a
  // layer is one of the model's, a fixed few).
  const std::set<std::string> allowed = {
      "run",   "lambda", "aux_resolution", "color_bins", "rank", "term",
      "bound", "z",      "layer",          "phase",      "le"};
  for (const auto& sample : s) {
    if (sample.name.rfind("agave_", 0) != 0 || sample.name == "agave_build_info") continue;
    for (const auto& [k, v] : sample.labels)
      EXPECT_TRUE(allowed.count(k)) << sample.name << " " << k;
  }
}

TEST(MetricsExporter, CountersFollowTheTrainersTotalsAndPhasesSwitch) {
  MetricsExporter ex(loopback(), labels("r", "1"));
  auto r = step_record(10);
  r.phase = "pretrain_vae";
  ex.record_step(r);
  r.steps_done = 30;
  r.skipped_steps_total = 3;
  r.phase = "joint";
  ex.record_step(r);
  auto s = scrape(ex.port());
  EXPECT_DOUBLE_EQ(value(s, "agave_steps_total", {{"run", "r"}}), 30);
  EXPECT_DOUBLE_EQ(value(s, "agave_nonfinite_steps_skipped_total", {{"run", "r"}}), 3);
  EXPECT_DOUBLE_EQ(value(s, "agave_phase", {{"run", "r"}, {"phase", "pretrain_vae"}}), 0);
  EXPECT_DOUBLE_EQ(value(s, "agave_phase", {{"run", "r"}, {"phase", "joint"}}), 1);

  // A total that goes backwards (a resumed run restarting its count) never lowers a counter.
  r.steps_done = 5;
  ex.record_step(r);
  s = scrape(ex.port());
  EXPECT_DOUBLE_EQ(value(s, "agave_steps_total", {{"run", "r"}}), 30);
}

TEST(MetricsExporter, RunsOfOneProcessShareOneExposerWithTheirOwnLabels) {
  const auto opts = loopback();
  int port = 0;
  {
    MetricsExporter first(opts, labels("lambda=1", "1"));
    first.record_step(step_record(5));
    port = first.port();
  }
  MetricsExporter second(opts, labels("lambda=4", "4"));
  second.record_step(step_record(7));
  EXPECT_EQ(second.port(), port) << "the second run of a sweep group must keep the address";
  const auto s = scrape(port);
  EXPECT_DOUBLE_EQ(value(s, "agave_steps_total", {{"run", "lambda=1"}, {"lambda", "1"}}), 5);
  EXPECT_DOUBLE_EQ(value(s, "agave_steps_total", {{"run", "lambda=4"}, {"lambda", "4"}}), 7);
  // The finished run says so; its last values stay for the sweep panels.
  EXPECT_DOUBLE_EQ(value(s, "agave_phase", {{"run", "lambda=1"}, {"phase", "done"}}), 1);
  EXPECT_DOUBLE_EQ(value(s, "agave_phase", {{"run", "lambda=1"}, {"phase", "joint"}}), 0);
  EXPECT_DOUBLE_EQ(value(s, "agave_phase", {{"run", "lambda=4"}, {"phase", "joint"}}), 1);
  // The process's series once per exposer, not once per run.
  EXPECT_DOUBLE_EQ(value(s, "agave_build_info", {}), 1);
  EXPECT_GT(value(s, "process_resident_memory_bytes", {}), 0);
}

TEST(MetricsExporter, PortInUseIsAClearErrorNamingTheAddress) {
  BusyPort busy;
  ASSERT_GT(busy.port, 0);
  try {
    MetricsExporter ex(loopback(busy.port), labels("r", "1"));
    FAIL() << "no error although 127.0.0.1:" << busy.port << " is in use";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(busy.port)), std::string::npos) << msg;
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
    EXPECT_NE(msg.find("next_free_port"), std::string::npos) << msg;
  }
}

TEST(MetricsExporter, NextFreePortTakesTheNextFreeOne) {
  BusyPort busy;
  auto opts = loopback(busy.port);
  opts.next_free_port = true;
  MetricsExporter ex(opts, labels("r", "1"));
  EXPECT_GT(ex.port(), busy.port);
  EXPECT_LE(ex.port(), busy.port + 100);
  ex.record_step(step_record(3));
  EXPECT_DOUBLE_EQ(value(scrape(ex.port()), "agave_steps_total", {{"run", "r"}}), 3);
}

TEST(MetricsExporter, DisabledServesNothingAndIgnoresRecords) {
  auto opts = loopback();
  opts.prometheus = false;
  MetricsExporter ex(opts, labels("r", "1"));
  EXPECT_FALSE(ex.enabled());
  EXPECT_EQ(ex.port(), 0);
  EXPECT_EQ(ex.url(), "");
  ex.record_step(step_record(1));
  ex.record_eval({1, 1, 1, 1, 1, 1, 1});
  ex.record_checkpoint(1, 1);
  ex.set_phase("joint");
}

TEST(MetricsExporter, RejectsAPortOutOfRange) {
  EXPECT_THROW(MetricsExporter(loopback(70000), labels("r", "1")), std::runtime_error);
}

TEST(MetricsExporter, DocsDescribeEveryFamily) {
  std::ifstream in(std::string(AGAVE_SOURCE_DIR) + "/docs/metrics.md");
  ASSERT_TRUE(in) << "docs/metrics.md is missing";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& f : kFamilies) {
    EXPECT_NE(doc.find("`" + f), std::string::npos) << f << " is not documented in docs/metrics.md";
  }
}

// Every agave_ name the docs mention is one the exporter serves (or an executable, or the
// cluster's discovery folder, or agave_elastic's own series, which tests/elastic checks the same
// way): a renamed or removed family leaves no stale name behind.
TEST(MetricsExporter, DocsNameNoFamilyTheExporterLacks) {
  std::ifstream in(std::string(AGAVE_SOURCE_DIR) + "/docs/metrics.md");
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::set<std::string> not_metrics = {"agave_trainer", "agave_eval",  "agave_sweep_plot",
                                             "agave_elastic", "agave_nodes", "agave_compare"};
  const std::regex name(R"(\bagave_[a-z_]+)");
  size_t seen = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), name); it != std::sregex_iterator();
       ++it) {
    std::string n = it->str();
    if (not_metrics.count(n) || n.rfind("agave_elastic_", 0) == 0) continue;
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (!kFamilies.count(n) && n.size() > suffix.size() &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
        n.resize(n.size() - suffix.size());
      }
    }
    EXPECT_TRUE(kFamilies.count(n)) << "docs/metrics.md names " << n << ", which is not served";
    ++seen;
  }
  EXPECT_GE(seen, kFamilies.size());
}

// `promtool check metrics` (Prometheus's own lint: units, suffixes, help) on a real scrape
// with every family set: no problem reported at all.
TEST(MetricsExporter, AScrapePassesPromtoolCheckMetricsWithoutWarnings) {
  if (!std::filesystem::exists("/usr/bin/promtool")) {
    GTEST_SKIP() << "/usr/bin/promtool is missing (Debian package prometheus; "
                 << "scripts/install-deps.sh installs it)";
  }
  MetricsExporter ex(loopback(), labels("lambda=2", "2"));
  ex.record_step(step_record(100));
  ex.record_eval(eval_record());
  ex.record_checkpoint(1.5, 2.5e6);
  agave::testing::TempDir dir;
  const std::string file = dir.write("metrics.txt", http_get(ex.port(), "/metrics").body);
  const auto r = agave::testing::sh("/usr/bin/promtool check metrics < " + file);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "") << "promtool reports problems";
}

// The shipped prometheus.yml is valid, and its file discovery reads the folder the launcher
// gives the exporter (<run.output_dir>/prometheus_targets, "runs" in the shipped configs).
TEST(MetricsExporter, ShippedPrometheusConfigIsValidAndDiscoversTheTargetsFolder) {
  const std::string config =
      std::string(AGAVE_SOURCE_DIR) + "/monitoring/prometheus/prometheus.yml";
  std::ifstream in(config);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("- ../../runs/prometheus_targets/*.json"), std::string::npos) << text;
  if (!std::filesystem::exists("/usr/bin/promtool")) GTEST_SKIP() << "/usr/bin/promtool is missing";
  const auto r = agave::testing::sh("/usr/bin/promtool check config " + config);
  EXPECT_EQ(r.code, 0) << r.output;
  // The only warnings allowed: discovery files that no job has written yet.
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("WARNING") == std::string::npos) continue;
    EXPECT_NE(line.find("does not exist"), std::string::npos) << line;
  }
}

// Each new exposer writes its address for Prometheus's file-based discovery, whatever port it
// took.
TEST(MetricsExporter, WritesItsAddressIntoTheTargetsFolder) {
  agave::testing::TempDir dir;
  int port = 0;
  {
    BusyPort closed;  // a port of its own: this process's port-0 exposer may exist already
    port = closed.port;
  }
  write_targets_into((dir.path() / "prometheus_targets").string());
  MetricsExporter ex(loopback(port), labels("r", "1"));
  write_targets_into("");
  const auto file =
      dir.path() / "prometheus_targets" / ("127.0.0.1-" + std::to_string(ex.port()) + ".json");
  std::ifstream in(file);
  ASSERT_TRUE(in) << file << " is missing";
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "[{\"targets\":[\"127.0.0.1:" + std::to_string(ex.port()) + "\"]}]\n");
}

TEST(MetricsExporter, CanListenTellsAPortInUseFromAFreeOne) {
  BusyPort busy;
  EXPECT_FALSE(can_listen("127.0.0.1", busy.port));
  MetricsExporter ex(loopback(), labels("r", "1"));
  EXPECT_FALSE(can_listen("127.0.0.1", ex.port()));
  int freed = 0;
  {
    BusyPort closed;  // a listener closed without connections leaves its port free at once
    freed = closed.port;
  }
  EXPECT_TRUE(can_listen("127.0.0.1", freed));
}

// The reason names what is wrong: a port in use is not an address this host does not have.
TEST(MetricsExporter, ListenProblemSaysWhyAPortCannotBeServed) {
  BusyPort busy;
  EXPECT_EQ(listen_problem("127.0.0.1", busy.port), std::strerror(EADDRINUSE));
  const int unused = agave::testing::free_port();
  EXPECT_EQ(listen_problem("127.0.0.1", unused), "");
  // 192.0.2.1: TEST-NET-1 (RFC 5737), never an address of this host.
  EXPECT_EQ(listen_problem("192.0.2.1", unused), std::strerror(EADDRNOTAVAIL));
}

}  // namespace
}  // namespace agave::monitoring
