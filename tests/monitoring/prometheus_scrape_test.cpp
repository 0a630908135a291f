// A real Prometheus (Debian's /usr/bin/prometheus) scrapes an exporter fed with synthetic
// training records; every PromQL expression of the Grafana dashboard must then return data, and
// every metric name it uses must be one the exporter really exposes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "monitoring/metrics_exporter.h"
#include "tests/monitoring/http_client.h"

namespace agave::monitoring {
namespace {

namespace fs = std::filesystem;
using testing::http_get;
using testing::url_encode;
using Clock = std::chrono::steady_clock;

const char* kPrometheus = "/usr/bin/prometheus";

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Prometheus started through scripts/start-prometheus.sh (which execs it, so the pid is the
// server's); stopped in the destructor whatever the test's outcome.
class PrometheusServer {
 public:
  PrometheusServer(const fs::path& dir, int exporter_port) : port_(free_port()) {
    const std::string script = std::string(AGAVE_SOURCE_DIR) + "/scripts/start-prometheus.sh";
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    const std::string target = "127.0.0.1:" + std::to_string(exporter_port);
    const std::string log = (dir / "prometheus.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      // Dies with the test process even if the test crashes before the destructor runs.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (!freopen(log.c_str(), "w", stderr) || !freopen(log.c_str(), "a", stdout)) _exit(126);
      execl("/bin/bash", "bash", script.c_str(), "--listen", listen.c_str(), "--storage",
            dir.c_str(), "--scrape-interval", "1s", "--target", target.c_str(),
            static_cast<char*>(nullptr));
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

TEST(MonitoringPrometheus, EveryDashboardQueryReturnsDataFromARealScrape) {
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
          exporters[i]->record_eval({step, r.loss_bpd + 0.1, r.loss_bpd, r.kl_bpd, 8});
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

  // The check can fail: a metric nobody exports gives no data.
  EXPECT_EQ(check_query(prom.port(), {"control", "agave_no_such_metric", ""}), "empty result");
  // All four label sets were scraped from the one exposer.
  EXPECT_EQ(
      check_query(prom.port(), {"ranks", R"(count(agave_steps_total{run=~"scrape .*"}) == 4)", ""}),
      "");
}

}  // namespace
}  // namespace agave::monitoring
