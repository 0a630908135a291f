#include "monitoring/sweep_summary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "monitoring/paper_axes.h"

namespace agave::monitoring {
namespace {

// The longest gnuplot may draw a sweep's plot (seconds); it takes well under one.
constexpr int kPlotSeconds = 60;

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

// The paper's axes lead tables and plots, in the order the paper discusses them.
const std::vector<std::string>& paper_axes() {
  static const std::vector<std::string> axes = [] {
    std::vector<std::string> labels;
    for (const auto& axis : kPaperAxes) labels.emplace_back(axis.label);
    return labels;
  }();
  return axes;
}

// A plot's title for a swept key: the paper's axes have their own.
std::string axis_title(const std::string& key) {
  for (const auto& axis : kPaperAxes) {
    if (key == axis.label) return axis.title;
  }
  return key;
}

// Every label of the rows: the paper's axes first, then the others by name.
std::vector<std::string> label_keys(const std::vector<SweepRow>& rows) {
  std::set<std::string> others;
  for (const auto& r : rows)
    for (const auto& [k, v] : r.labels) others.insert(k);
  std::vector<std::string> keys;
  for (const auto& a : paper_axes()) {
    if (others.erase(a)) keys.push_back(a);
  }
  keys.insert(keys.end(), others.begin(), others.end());
  return keys;
}

std::string label_value(const SweepRow& r, const std::string& key) {
  const auto it = r.labels.find(key);
  return it == r.labels.end() ? "" : it->second;
}

// Numbers before text, numbers by value, text by text.
bool value_less(const std::string& a, const std::string& b) {
  const double x = number_or_inf(a), y = number_or_inf(b);
  if (x != y) return x < y;
  return a < b;
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
// An array of numbers of a summary (null elements NaN); empty when it is missing.
std::vector<double> numbers_or_nan(const nlohmann::json& s, const char* key) {
  std::vector<double> out;
  const auto it = s.find(key);
  if (it == s.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    out.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
  }
  return out;
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
      visit_paper_axes(
          r, [&](const PaperAxis& axis, std::string& value) { value = label(s, axis.label); });
      if (s.contains("labels") && s["labels"].is_object()) {
        for (const auto& [k, v] : s["labels"].items()) r.labels[k] = label(s, k.c_str());
      }
      r.test_elbo_bpd = s.at("test_elbo_bpd").get<double>();
      r.test_iw_bpd = s.at("test_iw_bpd").get<double>();
      r.test_kl_bpd = s.at("test_kl_bpd").get<double>();
      r.test_aux_bpd = number_or_nan(s, "test_aux_bpd");
      r.test_vae_bpd = number_or_nan(s, "test_vae_bpd");
      r.weights = s.value("test_weights", "");
      r.test_images = s.value("test_images", int64_t{0});
      r.steps = s.at("steps").get<int64_t>();
      r.test_pixel_bpd = number_or_nan(s, "test_pixel_bpd");
      r.test_pixel_shuffled_bpd = number_or_nan(s, "test_pixel_shuffled_bpd");
      r.test_latent_use_bpd = number_or_nan(s, "test_latent_use_bpd");
      r.test_latent_use_bpd_stderr = number_or_nan(s, "test_latent_use_bpd_stderr");
      r.test_kl_bpd_layers = numbers_or_nan(s, "test_kl_bpd_layers");
      r.test_active_latent_channels = number_or_nan(s, "test_active_latent_channels");
      r.test_latent_channels = number_or_nan(s, "test_latent_channels");
      rows.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      if (!unreadable)
        throw std::runtime_error("sweep summary: " + file.string() + ": " + e.what());
      unreadable->emplace_back(entry.path().filename().string(), file.string() + ": " + e.what());
    }
  }
  const auto keys = label_keys(rows);
  std::sort(rows.begin(), rows.end(), [&](const SweepRow& a, const SweepRow& b) {
    for (const auto& k : keys) {
      const std::string x = label_value(a, k), y = label_value(b, k);
      if (x != y) return value_less(x, y);
    }
    return a.run < b.run;
  });
  return rows;
}

std::string sweep_csv(const std::vector<SweepRow>& rows) {
  std::string out = "run";
  for (const auto& axis : kPaperAxes) out += std::string(",") + axis.label;
  out +=
      ",test_elbo_bpd,test_iw_bpd,test_kl_bpd,test_aux_bpd,test_vae_bpd,weights,test_images,"
      "steps,test_pixel_bpd,test_pixel_shuffled_bpd,test_latent_use_bpd,"
      "test_latent_use_bpd_stderr,test_kl_bpd_layers,test_active_latent_channels,"
      "test_latent_channels\n";
  for (const auto& r : rows) {
    out += csv_field(r.run);
    visit_paper_axes(r, [&](const PaperAxis&, const std::string& v) { out += "," + csv_field(v); });
    // Shortest representation that reads back to the same double.
    out += fmt::format(",{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.test_elbo_bpd,
                       r.test_iw_bpd, r.test_kl_bpd, r.test_aux_bpd, r.test_vae_bpd,
                       csv_field(r.weights), r.test_images, r.steps, r.test_pixel_bpd,
                       r.test_pixel_shuffled_bpd, r.test_latent_use_bpd,
                       r.test_latent_use_bpd_stderr, fmt::join(r.test_kl_bpd_layers, ";"),
                       r.test_active_latent_channels, r.test_latent_channels);
  }
  return out;
}

std::vector<std::string> swept_keys(const std::vector<SweepRow>& rows) {
  std::vector<std::string> out;
  for (const auto& k : label_keys(rows)) {
    std::set<std::string> values;
    for (const auto& r : rows) values.insert(label_value(r, k));
    if (values.size() >= 2) out.push_back(k);
  }
  return out;
}

std::string sweep_table(const std::vector<SweepRow>& rows,
                        const std::vector<std::pair<std::string, std::string>>& constants) {
  const auto keys = swept_keys(rows);
  // Constants: those the caller knows (settings no run was given a label for), then labels
  // every row has with the same value (a grid axis of one value).
  auto all = constants;
  for (const auto& k : label_keys(rows)) {
    if (std::find(keys.begin(), keys.end(), k) != keys.end() || rows.empty()) continue;
    const bool everywhere = std::all_of(rows.begin(), rows.end(),
                                        [&](const SweepRow& r) { return r.labels.count(k) != 0; });
    const bool known =
        std::any_of(all.begin(), all.end(), [&](const auto& c) { return c.first == k; });
    if (everywhere && !known) all.emplace_back(k, label_value(rows.front(), k));
  }
  std::string out;
  if (!all.empty()) {
    out += "constants:";
    for (size_t i = 0; i < all.size(); ++i) {
      out += (i ? ", " : " ") + all[i].first + "=" + all[i].second;
    }
    out += "\n";
  }
  std::vector<size_t> width;
  for (const auto& k : keys) width.push_back(std::max<size_t>(8, k.size()));
  out += fmt::format("{:<{}}", "run", kRunColumn);
  for (size_t i = 0; i < keys.size(); ++i) out += fmt::format(" {:>{}}", keys[i], width[i]);
  out += fmt::format(" {:>10} {:>10} {:>10}\n", "elbo bpd", "iw bpd", "kl bpd");
  for (const auto& r : rows) {
    out += fmt::format("{:<{}}", r.run, kRunColumn);
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string v = label_value(r, keys[i]);
      out += fmt::format(" {:>{}}", v.empty() ? "-" : v, width[i]);
    }
    out += fmt::format(" {:>10.4f} {:>10.4f} {:>10.4f}\n", r.test_elbo_bpd, r.test_iw_bpd,
                       r.test_kl_bpd);
  }
  return out;
}

namespace {

// gnuplot's single-quoted strings: a quote inside becomes a double quote.
std::string quoted(std::string s) {
  std::replace(s.begin(), s.end(), '\'', '"');
  return "'" + s + "'";
}

// gnuplot's output as one line (an error names the script line on one line and the problem on
// the next), so a caller can report it in one.
std::string one_line(const std::string& text) {
  std::string out, line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t^");
    if (b == std::string::npos) continue;
    out += (out.empty() ? "" : " | ") + line.substr(b);
  }
  return out.size() > 400 ? out.substr(0, 400) + " ..." : out;
}

// One row of panels: bits/dim and KL against `key` ("" : against the runs), one line per
// combination of the other swept keys. Writes its data file and returns its gnuplot commands.
std::string plot_row(const std::vector<SweepRow>& rows, const std::string& key,
                     const std::vector<std::string>& keys, const std::string& data_path) {
  auto value = [&](const SweepRow& r) { return key.empty() ? r.run : label_value(r, key); };
  bool numeric = !key.empty();
  std::vector<std::string> values;  // distinct, in row order (rows are sorted)
  for (const auto& r : rows) {
    numeric = numeric && std::isfinite(number_or_inf(value(r)));
    if (std::find(values.begin(), values.end(), value(r)) == values.end()) {
      values.push_back(value(r));
    }
  }
  auto x_of = [&](const SweepRow& r) {
    return numeric ? number_or_inf(value(r))
                   : static_cast<double>(std::find(values.begin(), values.end(), value(r)) -
                                         values.begin());
  };
  // Lines: the values of the other swept keys, in row order.
  std::vector<std::string> groups;
  std::map<std::string, std::vector<const SweepRow*>> members;
  for (const auto& r : rows) {
    std::string g;
    for (const auto& k : keys) {
      if (k != key) g += (g.empty() ? "" : ", ") + k + "=" + label_value(r, k);
    }
    if (!members.count(g)) groups.push_back(g);
    members[g].push_back(&r);
  }
  {
    std::ofstream data(data_path);
    data << "# x elbo iw kl; one block per line of the plot\n";
    for (const auto& g : groups) {
      auto m = members[g];
      std::stable_sort(m.begin(), m.end(),
                       [&](const SweepRow* a, const SweepRow* b) { return x_of(*a) < x_of(*b); });
      for (const SweepRow* r : m) {
        data << fmt::format("{} {} {} {}\n", x_of(*r), r->test_elbo_bpd, r->test_iw_bpd,
                            r->test_kl_bpd);
      }
      data << "\n\n";
    }
  }
  std::ostringstream gp;
  gp << "set xlabel " << quoted(key.empty() ? "run" : axis_title(key))
     << "\nunset logscale x\nset autoscale x\nset xtics norotate\n";
  std::string tics;
  for (size_t i = 0; i < values.size(); ++i) {
    tics += fmt::format("{}{} {}", i ? ", " : "", quoted(values[i]),
                        numeric ? number_or_inf(values[i]) : static_cast<double>(i));
  }
  gp << "set xtics (" << tics << ")\n";
  if (numeric) {
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (const auto& v : values) {
      lo = std::min(lo, number_or_inf(v));
      hi = std::max(hi, number_or_inf(v));
    }
    if (lo > 0 && hi / lo >= 4) gp << "set logscale x 2\n";
    gp << "set offsets graph 0.05, graph 0.05, 0, 0\n";
  } else {
    gp << "set offsets 0, 0, 0, 0\nset xrange [-0.5:" << values.size() - 0.5 << "]\n";
    if (key.empty()) gp << "set xtics rotate by -30\n";
  }
  const bool several = groups.size() > 1;
  gp << "set title "
     << quoted(several ? "test bits/dim (solid: IW bound, dashed: ELBO)" : "test bits/dim")
     << "\nset ylabel 'bits/dim'\nplot ";
  for (size_t g = 0; g < groups.size(); ++g) {
    gp << (g ? ", " : "") << quoted(data_path) << " index " << g
       << " using 1:3 with linespoints lw 2 pt 7 lc " << g + 1 << " title "
       << quoted(several ? groups[g] : "IW bound") << ", '' index " << g
       << " using 1:2 with linespoints lw 2 dt 2 pt 5 lc " << g + 1
       << (several ? " notitle" : " title 'ELBO bound'");
  }
  gp << "\nset title 'KL(q(z|x) || p(z))'\nset ylabel 'KL bits/dim'\nplot ";
  for (size_t g = 0; g < groups.size(); ++g) {
    gp << (g ? ", " : "") << quoted(data_path) << " index " << g
       << " using 1:4 with linespoints lw 2 pt 9 lc " << (several ? g + 1 : 7) << " title "
       << quoted(several ? groups[g] : "KL");
  }
  gp << "\n";
  return gp.str();
}

}  // namespace

void plot_sweep(const std::vector<SweepRow>& rows, const std::string& png_path,
                const std::string& title) {
  if (rows.empty()) throw std::runtime_error("sweep plot: no runs with a summary.json to plot");
  const auto keys = swept_keys(rows);
  std::vector<std::string> axes = keys;
  if (axes.empty()) axes.push_back("");  // one run, or runs without labels: against the runs

  // gnuplot reads data files and a script; all sit beside the picture until it is drawn.
  std::vector<std::string> temporary;
  const std::string script_path = png_path + ".gp";
  const std::string err_path = png_path + ".log";
  std::ofstream gp(script_path);
  gp << "set encoding utf8\n"
     << "set terminal pngcairo size 1200," << 500 * axes.size() << " font 'Sans,11' noenhanced\n"
     << "set output " << quoted(png_path) << "\n"
     << "set multiplot layout " << axes.size() << ",2 title "
     << quoted(title.empty() ? "sweep" : title) << "\n"
     << "set grid\nset key top right\n";
  for (size_t a = 0; a < axes.size(); ++a) {
    temporary.push_back(png_path + "." + std::to_string(a) + ".dat");
    gp << plot_row(rows, axes[a], keys, temporary.back());
  }
  gp << "unset multiplot\n";
  gp.close();
  temporary.push_back(script_path);
  temporary.push_back(err_path);
  // A plot that takes minutes is lost, not the sweep's end (coreutils' timeout).
  const std::string cmd = "timeout " + std::to_string(kPlotSeconds) + " gnuplot " +
                          quoted(script_path) + " > " + quoted(err_path) + " 2>&1";
  const int rc = std::system(cmd.c_str());  // bound: kPlotSeconds (timeout above)
  std::ifstream err_in(err_path);
  const std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  std::error_code ec;
  for (const auto& t : temporary) fs::remove(t, ec);
  const bool drawn = fs::is_regular_file(png_path, ec) && fs::file_size(png_path, ec) > 0;
  if (rc != 0 || !drawn) {
    throw std::runtime_error("sweep plot: gnuplot failed (exit " + std::to_string(rc) +
                             "; Debian package gnuplot-nox): " + one_line(err));
  }
}

std::vector<SweepRow> write_sweep_summary(
    const std::string& sweep_dir, const WriteFile& write,
    std::vector<std::pair<std::string, std::string>>* unreadable) {
  auto rows = read_sweep(sweep_dir, unreadable);
  write((fs::path(sweep_dir) / "sweep.csv").string(), sweep_csv(rows));
  return rows;
}

}  // namespace agave::monitoring
