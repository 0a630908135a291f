// agave_compare --arm NAME FILE... --arm NAME FILE... [--markdown F] [--csv F] [--arms-csv F]
//               [--columns C,...] [--across-k]
// Compares arms (configs, sweep points) evaluated image by image (agave_eval --per-image), one
// file per seed: per arm and seed the mean of each column, per pair of arms the paired
// differences per seed and across seeds (analysis/comparison.h). Files of other test images, K
// or weights are refused (one line naming them, exit 2); --across-k lets each arm have its own
// K (one checkpoint evaluated with K = 1, 8, 150: does the IW bound converge?). The markdown
// report goes to stdout.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "analysis/comparison.h"
#include "analysis/per_image_file.h"
#include "analysis/report.h"
#include "io/atomic_file.h"
#include "launcher/entry_point.h"
#include "version/version.h"

namespace {

using namespace agave;

struct Arguments {
  std::vector<std::vector<std::string>> arms;  // each: a name, then its files
  std::vector<std::string> columns;
  std::string markdown, csv, arms_csv;
  bool across_k = false;
};

std::vector<analysis::Arm> read_arms(const Arguments& a) {
  std::vector<analysis::Arm> arms;
  for (const auto& given : a.arms) {
    if (given.size() < 2) {
      throw analysis::PairingError("--arm " + (given.empty() ? "" : given.front()) +
                                   ": an arm is a name and its files, one per seed");
    }
    analysis::Arm arm{given.front(), {}};
    for (size_t i = 1; i < given.size(); ++i)
      arm.seeds.push_back(analysis::read_per_image(given[i]));
    arms.push_back(std::move(arm));
  }
  return arms;
}

void write_if_asked(const std::string& path, const std::string& text) {
  if (path.empty()) return;
  io::write_file_atomically(path, text);
  std::cerr << "agave_compare: wrote " << path << "\n";
}

int run(const Arguments& a) {
  const auto c =
      analysis::compare(read_arms(a), a.columns,
                        a.across_k ? analysis::KPairing::kAcrossArms : analysis::KPairing::kSameK);
  const std::string md = analysis::markdown(c);
  std::cout << md << std::flush;
  write_if_asked(a.markdown, md);
  write_if_asked(a.csv, analysis::long_csv(c));
  write_if_asked(a.arms_csv, analysis::arms_csv(c));
  return code(launcher::ExitCode::kOk);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "agave_compare: paired comparison of arms x seeds evaluated on the same test images "
      "(agave_eval --per-image files); docs/metrics.md, \"Paired comparisons\""};
  app.set_version_flag("--version", version::describe("agave_compare"));
  Arguments a;
  app.add_option("--arm", a.arms,
                 "an arm: its name, then its per-image files, one per seed (seed i of every arm "
                 "is paired); give two or more")
      ->expected(2, 1 << 20)
      ->required();
  app.add_option("--columns", a.columns,
                 "columns to compare (default: every column all files have)")
      ->delimiter(',');
  app.add_flag("--across-k", a.across_k,
               "pair arms of different K (each arm one K): the IW bound's convergence in K on "
               "one checkpoint");
  app.add_option("--markdown", a.markdown, "also write the markdown report to this file");
  app.add_option("--csv", a.csv, "write every number of the report to this CSV file (long form)");
  app.add_option("--arms-csv", a.arms_csv,
                 "write each arm's means across seeds to this CSV file (a row per arm), to plot");
  if (const auto code = launcher::parse_command_line(app, argc, argv)) return *code;
  return launcher::guarded_main("agave_compare", [&] { return run(a); });
}
