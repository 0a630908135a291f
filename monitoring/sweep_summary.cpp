#include "monitoring/sweep_summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
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

std::vector<std::pair<std::string, std::string>> read_failed_runs(const std::string& sweep_dir) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!fs::is_directory(sweep_dir)) return out;
  for (const auto& entry : fs::directory_iterator(sweep_dir)) {
    const fs::path file = entry.path() / "failed.json";
    if (!entry.is_directory() || !fs::exists(file)) continue;
    std::ifstream in(file);
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    const std::string run = entry.path().filename().string();
    out.emplace_back(run, j.is_object() ? j.value("error", std::string("(no reason recorded)"))
                                        : std::string("(unreadable ") + file.string() + ")");
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
// A number of a summary, or NaN when it is missing or null (JSON has no NaN: nlohmann writes
// null for it).
double number_or_nan(const nlohmann::json& s, const char* key) {
  const auto it = s.find(key);
  if (it == s.end() || it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  return it->get<double>();
}
}  // namespace

std::vector<SweepRow> read_sweep(const std::string& sweep_dir,
                                 std::vector<std::pair<std::string, std::string>>* unreadable) {
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
      r.test_aux_bpd = number_or_nan(s, "test_aux_bpd");
      r.test_vae_bpd = number_or_nan(s, "test_vae_bpd");
      r.weights = s.value("test_weights", "");
      r.test_images = s.value("test_images", int64_t{0});
      r.steps = s.at("steps").get<int64_t>();
      rows.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      if (!unreadable)
        throw std::runtime_error("sweep summary: " + file.string() + ": " + e.what());
      unreadable->emplace_back(entry.path().filename().string(), file.string() + ": " + e.what());
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
  out << "run,lambda,aux_resolution,color_bins,test_elbo_bpd,test_iw_bpd,test_kl_bpd,"
         "test_aux_bpd,test_vae_bpd,weights,test_images,steps\n";
  for (const auto& r : rows) {
    // Shortest representation that reads back to the same double.
    out << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.run),
                       csv_field(r.lambda), csv_field(r.aux_resolution), csv_field(r.color_bins),
                       r.test_elbo_bpd, r.test_iw_bpd, r.test_kl_bpd, r.test_aux_bpd,
                       r.test_vae_bpd, csv_field(r.weights), r.test_images, r.steps);
  }
  if (!out) throw std::runtime_error("sweep summary: cannot write " + path);
}

void plot_sweep(const std::vector<SweepRow>& rows, const std::string& png_path,
                const std::string& title) {
  if (rows.empty()) throw std::runtime_error("sweep plot: no runs with a summary.json to plot");
  std::set<double> lambdas;
  for (const auto& r : rows) {
    const double l = number_or_inf(r.lambda);
    if (std::isfinite(l)) lambdas.insert(l);
  }
  const bool by_lambda = lambdas.size() >= 2;

  // gnuplot reads a data file and a script; both sit beside the picture until it is drawn.
  const std::string data_path = png_path + ".dat";
  const std::string script_path = png_path + ".gp";
  {
    std::ofstream data(data_path);
    data << "# x elbo iw kl label\n";
    int i = 0;
    for (const auto& r : rows) {
      const double x = by_lambda ? number_or_inf(r.lambda) : i;
      ++i;
      if (!std::isfinite(x)) continue;
      std::string label = by_lambda ? r.lambda : r.run;
      std::replace(label.begin(), label.end(), '"', '\'');
      data << fmt::format("{} {} {} {} \"{}\"\n", x, r.test_elbo_bpd, r.test_iw_bpd, r.test_kl_bpd,
                          label);
    }
  }
  auto quoted = [](std::string s) {
    std::replace(s.begin(), s.end(), '\'', '"');
    return "'" + s + "'";
  };
  const std::string xlabel = by_lambda ? "{/Symbol l} (KL weight)" : "run";
  const std::string xtics = by_lambda ? "using 1:2" : "using 1:2:xtic(5)";
  const std::string xtics3 = by_lambda ? "using 1:3" : "using 1:3:xtic(5)";
  const std::string xtics4 = by_lambda ? "using 1:4" : "using 1:4:xtic(5)";
  std::ofstream gp(script_path);
  gp << "set terminal pngcairo size 1200,500 font 'Sans,11'\n"
     << "set output " << quoted(png_path) << "\n"
     << "set multiplot layout 1,2 title " << quoted(title.empty() ? "sweep" : title)
     << " noenhanced\n"
     << "set grid\nset key top right\nset xlabel '" << xlabel << "'\n"
     << (by_lambda ? "set logscale x 2\nset xtics (" : "set xtics rotate by -30\n");
  if (by_lambda) {
    bool first = true;
    for (double l : lambdas) {
      gp << (first ? "" : ", ") << fmt::format("'{}' {}", l, l);
      first = false;
    }
    gp << ")\n";
  }
  gp << "set title 'test bits/dim'\nset ylabel 'bits/dim'\n"
     << "plot " << quoted(data_path) << " " << xtics
     << " with linespoints lw 2 pt 7 title 'ELBO bound', '' " << xtics3
     << " with linespoints lw 2 pt 5 title 'IW bound'\n"
     << "set title 'KL(q(z|x) || p(z))'\nset ylabel 'KL bits/dim'\n"
     << "plot " << quoted(data_path) << " " << xtics4
     << " with linespoints lw 2 pt 9 lc rgb '#d62728' title 'KL'\n"
     << "unset multiplot\n";
  gp.close();
  const std::string err_path = png_path + ".log";
  const std::string cmd = "gnuplot " + quoted(script_path) + " > " + quoted(err_path) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream err_in(err_path);
  const std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  std::error_code ec;
  fs::remove(data_path, ec);
  fs::remove(script_path, ec);
  fs::remove(err_path, ec);
  if (rc != 0 || !fs::exists(png_path) || fs::file_size(png_path) == 0) {
    throw std::runtime_error("sweep plot: gnuplot failed (exit " + std::to_string(rc) +
                             "; Debian package gnuplot-nox): " + err);
  }
}

std::vector<SweepRow> write_sweep_summary(
    const std::string& sweep_dir, std::vector<std::pair<std::string, std::string>>* unreadable) {
  auto rows = read_sweep(sweep_dir, unreadable);
  write_sweep_csv(rows, (fs::path(sweep_dir) / "sweep.csv").string());
  return rows;
}

}  // namespace agave::monitoring
