#include "monitoring/sweep_summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

namespace agave::monitoring {
namespace {

namespace fs = std::filesystem;

std::string label(const nlohmann::json& s, const char* key) {
  if (!s.contains("labels") || !s["labels"].contains(key)) return "";
  const auto& v = s["labels"][key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// "12" sorts after "2": compare numerically when both parse.
double number_or_inf(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return (s.empty() || *end != '\0') ? HUGE_VAL : v;
}

// A run name or label may hold commas (run names are "lambda=12,aux_resolution=16").
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<SweepRow> read_sweep(const std::string& sweep_dir) {
  if (!fs::is_directory(sweep_dir)) {
    throw std::runtime_error("sweep summary: " + sweep_dir + " is not a directory");
  }
  std::vector<SweepRow> rows;
  for (const auto& entry : fs::directory_iterator(sweep_dir)) {
    const fs::path file = entry.path() / "summary.json";
    if (!entry.is_directory() || !fs::exists(file)) continue;
    std::ifstream in(file);
    nlohmann::json s;
    try {
      in >> s;
      SweepRow r;
      r.run = s.value("run", entry.path().filename().string());
      r.lambda = label(s, "lambda");
      r.aux_resolution = label(s, "aux_resolution");
      r.color_bins = label(s, "color_bins");
      r.test_elbo_bpd = s.at("test_elbo_bpd").get<double>();
      r.test_iw_bpd = s.at("test_iw_bpd").get<double>();
      r.test_kl_bpd = s.at("test_kl_bpd").get<double>();
      r.steps = s.at("steps").get<int64_t>();
      rows.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("sweep summary: " + file.string() + ": " + e.what());
    }
  }
  auto key = [](const SweepRow& r) {
    return std::make_tuple(number_or_inf(r.lambda), number_or_inf(r.aux_resolution),
                           number_or_inf(r.color_bins), r.run);
  };
  std::sort(rows.begin(), rows.end(),
            [&](const SweepRow& a, const SweepRow& b) { return key(a) < key(b); });
  return rows;
}

void write_sweep_csv(const std::vector<SweepRow>& rows, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("sweep summary: cannot write " + path);
  out << "run,lambda,aux_resolution,color_bins,test_elbo_bpd,test_iw_bpd,test_kl_bpd,steps\n";
  for (const auto& r : rows) {
    // Shortest representation that reads back to the same double.
    out << fmt::format("{},{},{},{},{},{},{},{}\n", csv_field(r.run), csv_field(r.lambda),
                       csv_field(r.aux_resolution), csv_field(r.color_bins), r.test_elbo_bpd,
                       r.test_iw_bpd, r.test_kl_bpd, r.steps);
  }
  if (!out) throw std::runtime_error("sweep summary: cannot write " + path);
}

std::vector<SweepRow> write_sweep_summary(const std::string& sweep_dir) {
  auto rows = read_sweep(sweep_dir);
  write_sweep_csv(rows, (fs::path(sweep_dir) / "sweep.csv").string());
  return rows;
}

}  // namespace agave::monitoring
