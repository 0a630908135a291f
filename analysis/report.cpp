#include "analysis/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace agave::analysis {

namespace {

// "3.4123", "–" for a number an arm does not have.
std::string num(double v, const char* spec = "{:.4f}") {
  return std::isfinite(v) ? fmt::format(spec, v) : "–";
}

std::string with_error(const MeanError& m, const char* spec = "{:.4f}") {
  if (!std::isfinite(m.mean)) return "–";
  return num(m.mean, spec) + " ± " + num(m.stderr_of_mean);
}

std::string row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& c : cells) out += " " + c + " |";
  return out + "\n";
}

std::string rule(size_t cells) {
  std::string out = "|";
  for (size_t i = 0; i < cells; ++i) out += "---|";
  return out + "\n";
}

std::string seed_label(const Comparison& c, size_t arm, size_t seed) {
  return std::to_string(c.arms[arm].seeds[seed].meta.seed);
}

std::string means_section(const Comparison& c) {
  std::vector<std::string> head = {"arm", "seed", "step", "images"};
  head.insert(head.end(), c.columns.begin(), c.columns.end());
  std::string out = "## Means per arm and seed\n\nMean ± standard error over the test images.\n\n" +
                    row(head) + rule(head.size());
  for (const auto& m : c.means) {
    const auto& f = c.arms[m.arm].seeds[m.seed];
    std::vector<std::string> cells = {c.arms[m.arm].name, seed_label(c, m.arm, m.seed),
                                      std::to_string(f.meta.step), std::to_string(f.rows())};
    for (const auto& e : m.columns) cells.push_back(with_error(e));
    out += row(cells);
  }
  return out;
}

std::string spread_cell(const SeedSpread& s, const char* spec) {
  if (!std::isfinite(s.across.mean)) return "–";
  return with_error(s.across, spec) + " (" + num(s.min, spec) + " .. " + num(s.max, spec) + ")";
}

std::string arms_section(const Comparison& c) {
  std::vector<std::string> head = {"arm", "seeds"};
  head.insert(head.end(), c.columns.begin(), c.columns.end());
  std::string out =
      "\n## Means per arm across seeds\n\nMean of the seeds' means ± standard error across "
      "seeds (min .. max).\n\n" +
      row(head) + rule(head.size());
  for (size_t a = 0; a < c.arms.size(); ++a) {
    std::vector<std::string> cells = {c.arms[a].name, std::to_string(c.arms[a].seeds.size())};
    for (size_t k = 0; k < c.columns.size(); ++k)
      cells.push_back(spread_cell(c.spread(a, k), "{:.4f}"));
    out += row(cells);
  }
  return out;
}

std::string pair_table(const Comparison& c, size_t a, size_t b) {
  std::vector<std::string> head = {"column"};
  for (size_t s = 0; s < c.arms[a].seeds.size(); ++s) head.push_back("seed " + seed_label(c, a, s));
  head.insert(head.end(), {"across seeds (min .. max)", "same sign"});
  std::string out =
      "\n### " + c.arms[b].name + " − " + c.arms[a].name + "\n\n" + row(head) + rule(head.size());
  for (const auto& p : c.pairs) {
    if (p.a != a || p.b != b) continue;
    std::vector<std::string> cells = {p.column};
    for (const auto& e : p.per_seed) cells.push_back(with_error(e, "{:+.4f}"));
    cells.push_back(spread_cell(p.seeds, "{:+.4f}"));
    cells.push_back(std::isfinite(p.seeds.across.mean) ? std::to_string(p.seeds.agreeing) + " of " +
                                                             std::to_string(p.seeds.across.n)
                                                       : "–");
    out += row(cells);
  }
  return out;
}

// "K = 8", or the arms' Ks in arm order where they differ ("K = 1 / 8 / 150 (per arm)").
std::string k_of(const Comparison& c) {
  std::vector<int64_t> ks;
  for (const auto& arm : c.arms) ks.push_back(arm.seeds[0].meta.importance_samples);
  if (std::all_of(ks.begin(), ks.end(), [&](int64_t k) { return k == ks[0]; })) {
    return fmt::format("K = {}", ks[0]);
  }
  return fmt::format("K = {} (per arm)", fmt::join(ks, " / "));
}

}  // namespace

std::string markdown(const Comparison& c) {
  const auto& first = c.arms[0].seeds[0];
  std::string out = fmt::format(
      "# Paired comparison: {} arms × {} seed(s), the same {} test images, IW bound {}, {} "
      "weights, bits/dim\n\n",
      c.arms.size(), first.rows() > 0 ? c.arms[0].seeds.size() : 0, first.rows(), k_of(c),
      first.meta.weights);
  out += means_section(c) + arms_section(c);
  out +=
      "\n## Paired differences\n\nArm − arm on the same images. Per seed: mean difference ± "
      "paired standard error over the images. Across seeds: mean of the seeds' differences ± "
      "standard error across seeds (min .. max), and how many seeds have its sign.\n";
  for (size_t a = 0; a < c.arms.size(); ++a) {
    for (size_t b = a + 1; b < c.arms.size(); ++b) out += pair_table(c, a, b);
  }
  return out;
}

namespace {

// A sweep point's name joins its axes with ',' (lambda=1,bins=8): such a name is quoted.
std::string field(const std::string& text) {
  if (text.find_first_of(",\"") == std::string::npos) return text;
  std::string out = "\"";
  for (char ch : text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string csv_row(const std::string& table, const std::string& arm, const std::string& versus,
                    const std::string& seed, const std::string& column, const MeanError& m,
                    const std::string& rest = ",,,") {
  return fmt::format("{},{},{},{},{},{:.9g},{:.9g},{},{}\n", table, field(arm), field(versus), seed,
                     column, m.mean, m.stderr_of_mean, m.n, rest);
}

std::string spread_rest(const SeedSpread& s) {
  return fmt::format("{:.9g},{:.9g},{},{}", s.min, s.max, s.agreeing, s.across.n);
}

}  // namespace

std::string long_csv(const Comparison& c) {
  std::string out = "table,arm,versus,seed,column,mean,stderr,n,min,max,agreeing,seeds\n";
  for (const auto& m : c.means) {
    for (size_t k = 0; k < c.columns.size(); ++k) {
      out += csv_row("mean", c.arms[m.arm].name, "", seed_label(c, m.arm, m.seed), c.columns[k],
                     m.columns[k]);
    }
  }
  for (size_t a = 0; a < c.arms.size(); ++a) {
    for (size_t k = 0; k < c.columns.size(); ++k) {
      const auto& s = c.spread(a, k);
      out += csv_row("arm", c.arms[a].name, "", "all", c.columns[k], s.across, spread_rest(s));
    }
  }
  for (const auto& p : c.pairs) {
    const auto &arm = c.arms[p.b].name, &versus = c.arms[p.a].name;
    for (size_t s = 0; s < p.per_seed.size(); ++s) {
      out += csv_row("paired", arm, versus, seed_label(c, p.a, s), p.column, p.per_seed[s]);
    }
    out +=
        csv_row("paired_seeds", arm, versus, "all", p.column, p.seeds.across, spread_rest(p.seeds));
  }
  return out;
}

std::string arms_csv(const Comparison& c) {
  std::string out = "arm";
  for (const auto& k : c.columns) out += "," + k + "," + k + "_stderr";
  out += "\n";
  for (size_t a = 0; a < c.arms.size(); ++a) {
    out += field(c.arms[a].name);
    for (size_t k = 0; k < c.columns.size(); ++k) {
      const auto& s = c.spread(a, k).across;
      out += fmt::format(",{:.9g},{:.9g}", s.mean, s.stderr_of_mean);
    }
    out += "\n";
  }
  return out;
}

}  // namespace agave::analysis
