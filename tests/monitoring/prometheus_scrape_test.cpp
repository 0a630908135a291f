// A real Prometheus (Debian's /usr/bin/prometheus) scrapes (1) an exporter fed with synthetic
// training records and (2) a real two-run sweep of agave_trainer under mpirun; every PromQL
// expression of the Grafana dashboard must then return data, and every metric name it uses
// must be one the exporter really exposes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "monitoring/metrics_exporter.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/ports.h"
#include "tests/common/process.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"
#include "tests/monitoring/http_client.h"

namespace agave::monitoring {
namespace {

namespace fs = std::filesystem;
using agave::testing::free_port;
using testing::http_get;
using testing::url_encode;
using Clock = std::chrono::steady_clock;

const char* kPrometheus = "/usr/bin/prometheus";

// Prometheus started through scripts/start-prometheus.sh (which execs it, so the pid is the
// server's); stopped in the destructor whatever the test's outcome.
class PrometheusServer {
 public:
  // Scrapes 127.0.0.1:<exporter_port> (none when 0) and the targets files matching `file_sd`.
  PrometheusServer(const fs::path& dir, int exporter_port, const std::string& file_sd = "")
      : port_(free_port()) {
    const std::string script = std::string(AGAVE_SOURCE_DIR) + "/scripts/start-prometheus.sh";
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    const std::string target = "127.0.0.1:" + std::to_string(exporter_port);
    const std::string log = (dir / "prometheus.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      // Dies with the test process even if the test crashes before the destructor runs.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (!freopen(log.c_str(), "w", stderr) || !freopen(log.c_str(), "a", stdout)) _exit(126);
      std::vector<std::string> args = {"bash",      script,       "--listen",          listen,
                                       "--storage", dir.string(), "--scrape-interval", "1s"};
      if (exporter_port != 0) args.insert(args.end(), {"--target", target});
      if (!file_sd.empty()) args.insert(args.end(), {"--file-sd", file_sd});
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv("/bin/bash", argv.data());
      _exit(127);
    }
  }
  ~PrometheusServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  int port() const { return port_; }

 private:
  int port_;
  pid_t pid_ = -1;
};

// Grafana's variables as the dashboard's "All" sends them (allValue ".*") and its interval
// macros at values that fit a 1 s scrape interval.
std::string substitute(std::string expr) {
  const std::vector<std::pair<std::string, std::string>> vars = {{"$__rate_interval", "10s"},
                                                                 {"$__interval", "1s"},
                                                                 {"$__range", "5m"},
                                                                 {"$aux_resolution", ".*"},
                                                                 {"$color_bins", ".*"},
                                                                 {"$lambda", ".*"},
                                                                 {"$rank", ".*"},
                                                                 {"$run", ".*"}};
  for (const auto& [from, to] : vars) {
    for (size_t p; (p = expr.find(from)) != std::string::npos;) expr.replace(p, from.size(), to);
  }
  return expr;
}

struct DashboardQuery {
  std::string where;   // panel or variable title, for failure messages
  std::string promql;  // after substitution
  std::string label;   // label_values(): the label that must have values
};

std::vector<DashboardQuery> dashboard_queries(const nlohmann::json& dash) {
  std::vector<DashboardQuery> out;
  for (const auto& p : dash.at("panels")) {
    for (const auto& t : p.value("targets", nlohmann::json::array())) {
      out.push_back({"panel '" + p.at("title").get<std::string>() + "'",
                     substitute(t.at("expr").get<std::string>()), ""});
    }
  }
  // label_values(<selector>, <label>) is Grafana's, not PromQL: ask for the label's values.
  const std::regex label_values(R"(^label_values\((.*),\s*(\w+)\)$)");
  for (const auto& v : dash.at("templating").at("list")) {
    if (v.at("type") == "datasource") continue;  // picks a Prometheus, queries nothing
    const std::string q = v.at("definition");
    std::smatch m;
    if (!std::regex_match(q, m, label_values)) {
      ADD_FAILURE() << "variable " << v.at("name") << ": not a label_values() query: " << q;
      continue;
    }
    out.push_back({"variable $" + v.at("name").get<std::string>(),
                   "count by (" + m[2].str() + ") (" + substitute(m[1].str()) + ")", m[2]});
  }
  return out;
}

// Empty string when the query returned at least one finite sample (with `label` set when
// given); otherwise what was wrong.
std::string check_query(int port, const DashboardQuery& q) {
  const auto r = http_get(port, "/api/v1/query?query=" + url_encode(q.promql));
  if (r.status != 200) return "HTTP " + std::to_string(r.status) + ": " + r.body;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return "bad answer: " + r.body;
  const auto& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return "empty result";
  for (const auto& s : result) {
    const double v = std::stod(s["value"][1].get<std::string>());
    const bool labelled = q.label.empty() || !s["metric"].value(q.label, "").empty();
    if (std::isfinite(v) && labelled) return "";
  }
  return "no finite sample" + (q.label.empty() ? "" : " with label " + q.label) + ": " +
         result.dump();
}

std::set<std::string> metric_names(const std::string& text) {
  std::set<std::string> out;
  const std::regex name(R"(\bagave_[a-z_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    out.insert(it->str());
  }
  return out;
}

nlohmann::json load_dashboard() {
  std::ifstream in(std::string(AGAVE_SOURCE_DIR) + "/monitoring/grafana/dashboards/agave.json");
  EXPECT_TRUE(in) << "monitoring/grafana/dashboards/agave.json is missing";
  return in ? nlohmann::json::parse(in) : nlohmann::json::object();
}

const nlohmann::json* variable(const nlohmann::json& dash, const std::string& name) {
  for (const auto& v : dash.at("templating").at("list")) {
    if (v.at("name") == name) return &v;
  }
  return nullptr;
}

// Imported into any Grafana: the Prometheus is chosen with the datasource variable, never a
// uid of ours; λ and rank sort as numbers; per-rank panels follow the rank variable.
TEST(Dashboard, UsesTheDatasourceVariableAndNumericSortsAndARankVariable) {
  const auto dash = load_dashboard();
  const auto* ds = variable(dash, "datasource");
  ASSERT_NE(ds, nullptr) << "no datasource variable";
  EXPECT_EQ(ds->at("type"), "datasource");
  EXPECT_EQ(ds->at("query"), "prometheus");
  const nlohmann::json want = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  size_t targets = 0;
  for (const auto& p : dash.at("panels")) {
    if (!p.contains("targets")) continue;
    const std::string title = p.at("title");
    EXPECT_EQ(p.at("datasource"), want) << "panel '" << title << "'";
    for (const auto& t : p.at("targets")) {
      EXPECT_EQ(t.at("datasource"), want) << "panel '" << title << "'";
      ++targets;
      if (title.find("per rank") != std::string::npos) {
        EXPECT_NE(t.at("expr").get<std::string>().find(R"(rank=~"$rank")"), std::string::npos)
            << "panel '" << title << "' ignores $rank";
      }
    }
  }
  EXPECT_GE(targets, 10u);
  for (const auto& v : dash.at("templating").at("list")) {
    if (v.at("type") == "query") {
      EXPECT_EQ(v.at("datasource"), want) << v.at("name");
    }
  }
  for (const char* name : {"lambda", "rank"}) {
    const auto* v = variable(dash, name);
    ASSERT_NE(v, nullptr) << "no variable " << name;
    EXPECT_EQ(v->at("sort"), 3) << name << " must sort numerically ascending (3)";
  }
  EXPECT_EQ(dash.dump().find("agave-prometheus"), std::string::npos);
  // The λ bar chart sorts its groups as numbers: converted to a number before sortBy.
  for (const auto& p : dash.at("panels")) {
    if (p.at("type") != "barchart") continue;
    std::vector<std::string> ids;
    for (const auto& t : p.at("transformations")) ids.push_back(t.at("id"));
    const auto sort = std::find(ids.begin(), ids.end(), "sortBy");
    ASSERT_NE(sort, ids.end());
    ASSERT_NE(sort, ids.begin());
    EXPECT_EQ(*(sort - 1), "convertFieldType") << p.at("title");
  }
}

TEST(Dashboard, EveryDashboardQueryReturnsDataFromARealScrape) {
  if (!fs::exists(kPrometheus)) {
    GTEST_SKIP() << kPrometheus << " is missing (Debian package prometheus; "
                 << "scripts/install-deps.sh installs it)";
  }
  std::ifstream dash_in(std::string(AGAVE_SOURCE_DIR) +
                        "/monitoring/grafana/dashboards/agave.json");
  ASSERT_TRUE(dash_in) << "monitoring/grafana/dashboards/agave.json is missing";
  const auto dash = nlohmann::json::parse(dash_in);
  const auto queries = dashboard_queries(dash);
  ASSERT_GE(queries.size(), 10u);

  // A sweep of two runs (λ 1 and 4) on two ranks each, sharing this process's exposer.
  MonitoringOptions opts;
  opts.port = 0;
  std::vector<std::unique_ptr<MetricsExporter>> exporters;
  for (const char* lambda : {"1", "4"}) {
    for (int rank = 0; rank < 2; ++rank) {
      exporters.push_back(std::make_unique<MetricsExporter>(
          opts, RunLabels{std::string("scrape lambda=") + lambda, lambda, "16", "32", rank}));
    }
  }
  const int exporter_port = exporters[0]->port();

  // Every metric the dashboard names is one the exporter serves.
  const auto exposed = metric_names(http_get(exporter_port, "/metrics").body);
  ASSERT_FALSE(exposed.empty());
  for (const auto& name : metric_names(dash.dump())) {
    EXPECT_TRUE(exposed.count(name))
        << "the dashboard uses " << name << ", which the exporter does not expose";
  }

  std::atomic<bool> stop{false};
  std::thread trainer([&] {
    for (int64_t step = 1; !stop; ++step) {
      for (size_t i = 0; i < exporters.size(); ++i) {
        const double lambda = i < 2 ? 1 : 4;
        StepRecord r;
        r.step = step;
        r.phase = step < 20 ? "pretrain_vae" : "joint";
        r.pixel_bpd = 3 + 1.0 / step;
        r.aux_bpd = 0.5;
        r.kl_bpd = 0.4 / lambda;
        r.loss_bpd = r.pixel_bpd + r.aux_bpd + r.kl_bpd;
        r.kl_nats = r.kl_bpd * 3072 * std::log(2.0);
        r.images_per_second = 500 + step;
        r.step_seconds = 0.05 + 0.01 * static_cast<double>(i % 2);  // rank 1 straggles
        r.compute_seconds = 0.04 + 0.01 * static_cast<double>(i % 2);
        r.allreduce_seconds = 0.008;
        r.data_wait_seconds = 0.002;
        r.steps_done = step;
        r.skipped_steps_total = step / 50;
        exporters[i]->record_step(r);
        if (step % 10 == 0) {
          EvalRecord e{step,      r.loss_bpd + 0.1,     r.loss_bpd, r.kl_bpd,
                       r.aux_bpd, r.aux_bpd + r.kl_bpd, 8};
          e.pixel_bpd = r.pixel_bpd;
          e.pixel_shuffled_bpd = r.pixel_bpd + r.kl_bpd / 2;
          e.latent_use_bpd = r.kl_bpd / 2;
          e.kl_bpd_layers = {r.kl_bpd / 2, r.kl_bpd / 2};
          e.active_latent_channels = lambda < 2 ? 12 : 6;
          e.latent_channels = 16;
          exporters[i]->record_eval(e);
          exporters[i]->record_checkpoint(0.2, 1e6);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      t.join();
    }
  } joiner{stop, trainer};

  const fs::path dir = fs::temp_directory_path() / ("agave-prom-" + std::to_string(getpid()));
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};
  PrometheusServer prom(dir, exporter_port);

  // Ready, then wait until every query has data: rate() needs two scrapes inside its window.
  const auto deadline = Clock::now() + std::chrono::seconds(25);
  std::map<std::string, std::string> failures;
  bool ready = false;
  while (Clock::now() < deadline) {
    ASSERT_TRUE(prom.running()) << "prometheus exited; see " << (dir / "prometheus.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (!ready) {
      ready = http_get(prom.port(), "/-/ready").status == 200;
      continue;
    }
    failures.clear();
    for (const auto& q : queries) {
      const auto why = check_query(prom.port(), q);
      if (!why.empty()) failures[q.where + ": " + q.promql] = why;
    }
    if (failures.empty()) break;
  }
  ASSERT_TRUE(ready) << "prometheus never became ready on 127.0.0.1:" << prom.port();
  for (const auto& [query, why] : failures) ADD_FAILURE() << query << "\n  -> " << why;

  // The process's own series, scraped: its build (labels from the build) and its memory.
  EXPECT_EQ(check_query(prom.port(), {"build", "agave_build_info == 1", "commit"}), "");
  EXPECT_EQ(check_query(prom.port(), {"memory", "process_resident_memory_bytes > 1e6", ""}), "");
  // The check can fail: a metric nobody exports gives no data.
  EXPECT_EQ(check_query(prom.port(), {"control", "agave_no_such_metric", ""}), "empty result");
  // All four label sets were scraped from the one exposer.
  EXPECT_EQ(
      check_query(prom.port(), {"ranks", R"(count(agave_steps_total{run=~"scrape .*"}) == 4)", ""}),
      "");
}

// Polls until every query has returned data at least once (or the deadline): rate() panels
// have data while steps run, the end-of-run values afterwards, so not all at one instant.
// Returns the queries that never did, with the last reason.
std::map<std::string, std::string> wait_for_queries(const PrometheusServer& prom,
                                                    const std::vector<DashboardQuery>& queries,
                                                    std::chrono::seconds budget,
                                                    const std::function<bool()>& keep_going) {
  const auto deadline = Clock::now() + budget;
  std::map<std::string, std::string> failures{{"prometheus", "never became ready"}};
  bool ready = false, seen_ready = false;
  while (Clock::now() < deadline && prom.running() && keep_going()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (!ready) {
      ready = http_get(prom.port(), "/-/ready").status == 200;
      continue;
    }
    if (!seen_ready) {
      seen_ready = true;
      failures.clear();
      for (const auto& q : queries) failures[q.where + ": " + q.promql] = "no data yet";
    }
    for (const auto& q : queries) {
      const std::string key = q.where + ": " + q.promql;
      if (!failures.count(key)) continue;
      const auto why = check_query(prom.port(), q);
      if (why.empty()) {
        failures.erase(key);
      } else {
        failures[key] = why;
      }
    }
    if (failures.empty()) break;
  }
  return failures;
}

TEST(Dashboard, EveryDashboardQueryReturnsDataFromARealTrainingSweep) {
  if (!fs::exists(kPrometheus)) {
    GTEST_SKIP() << kPrometheus << " is missing (Debian package prometheus)";
  }
  if (!agave::testing::have_fashion_mnist()) GTEST_SKIP() << agave::testing::kNoFashionMnist;
  std::ifstream dash_in(std::string(AGAVE_SOURCE_DIR) +
                        "/monitoring/grafana/dashboards/agave.json");
  const auto queries = dashboard_queries(nlohmann::json::parse(dash_in));
  agave::testing::TempDir dir;

  // Two runs (λ 1 and 4) trained at once by two rank groups; each group's rank 0 exports on
  // `base` + its node-local rank (or the next free port), then keeps /metrics up until
  // Prometheus has scraped the end.
  const int base = free_port();
  const std::string config = dir.write(
      "sweep.yaml", agave::testing::TinyConfig("prom", dir.path().string() + "/runs",
                                               dir.path().string() + "/shards")
                        .seed(2)
                        .batch_size(8)
                        .phases({{"pretrain_vae", 20}, {"pretrain_pixelcnn", 20}, {"joint", 160}})
                        .eval_every(100)
                        .eval(2, 8, 8, 0)
                        .checkpoint(100, 2)
                        .log_every(5)
                        .prometheus_port(base)
                        .linger_seconds(240)
                        .append("sweep:\n  ranks_per_run: 1\n  grid: {loss.lambda: [1, 4]}\n")
                        .yaml());
  fs::create_directories(dir.path() / "prom");
  // No port is given to Prometheus: it finds the exporters through the targets files they
  // write into <run.output_dir>/prometheus_targets (as the shipped prometheus.yml does).
  const auto prom = std::make_unique<PrometheusServer>(
      dir.path() / "prom", 0, dir.path().string() + "/runs/prometheus_targets/*.json");
  // Prometheus is scraping before the first step, so the rate() panels see the steps.
  for (int i = 0; i < 120 && http_get(prom->port(), "/-/ready").status != 200; ++i) {
    ASSERT_TRUE(prom->running()) << "prometheus exited; see " << (dir.path() / "prom");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const fs::path log = dir.path() / "trainer.log";
  const pid_t trainer = fork();
  if (trainer == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    const std::string cmd = "exec " + agave::testing::mpirun(2) + AGAVE_BIN_DIR +
                            "/agave_trainer " + config + " > " + log.string() + " 2>&1";
    execl("/bin/bash", "bash", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = -1;
  bool exited = false;
  auto alive = [&] {
    if (!exited && waitpid(trainer, &status, WNOHANG) == trainer) exited = true;
    return !exited;
  };

  // Also: both runs were scraped, with their λ as a label, up to the end of training.
  auto all = queries;
  all.push_back({"runs", "count(count by (lambda) (agave_steps_total)) == 2", ""});
  // Both exporters were discovered from their targets files.
  all.push_back({"discovered", "count(up{job=\"agave\"} == 1) == 2", ""});
  all.push_back({"end of training", "min(agave_steps_total) >= 200", ""});
  // Each trainer process says which build it is and how much memory it holds.
  all.push_back({"build", "count(agave_build_info == 1) == 2", ""});
  all.push_back({"build commit", "agave_build_info", "commit"});
  all.push_back({"memory", "count(process_resident_memory_bytes > 1e6) == 2", ""});
  // Both runs finished while their exporters still serve: Prometheus sees the phase "done".
  all.push_back({"done", "count(agave_phase{phase=\"done\"} == 1) == 2", ""});
  const auto failures = wait_for_queries(*prom, all, std::chrono::seconds(240), alive);
  for (const auto& [query, why] : failures) ADD_FAILURE() << query << "\n  -> " << why;

  // Done: end the linger (SIGUSR1 to mpirun, which forwards it to the ranks: a stop request)
  // and require a clean exit.
  if (alive()) kill(trainer, SIGUSR1);
  for (int i = 0; i < 600 && alive(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (alive()) {
    kill(-trainer, SIGKILL);
    waitpid(trainer, &status, 0);
    ADD_FAILURE() << "agave_trainer did not end after SIGUSR1";
  }
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_NE(output.find("sweep summary:"), std::string::npos) << output;
}

}  // namespace
}  // namespace agave::monitoring
