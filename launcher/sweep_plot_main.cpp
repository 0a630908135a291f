// agave_sweep_plot <sweep dir> [--png FILE] [--title TEXT]: writes <sweep dir>/sweep.csv from
// the runs' summary.json files and plots test bits/dim and KL against lambda (sweep.png).
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>

#include "monitoring/sweep_summary.h"

int main(int argc, char** argv) {
  const std::string usage =
      "usage: agave_sweep_plot <sweep dir> [--png FILE] [--title TEXT]\n"
      "  <sweep dir> is <run.output_dir>/<run.name>: one folder per run with its summary.json\n";
  std::string dir, png, title;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--png" || a == "--title") && i + 1 < argc) {
      (a == "--png" ? png : title) = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    } else if (dir.empty() && !a.empty() && a[0] != '-') {
      dir = a;
    } else {
      std::cerr << "agave_sweep_plot: unexpected argument '" << a << "'\n" << usage;
      return 2;
    }
  }
  if (dir.empty()) {
    std::cerr << usage;
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    if (png.empty()) png = (fs::path(dir) / "sweep.png").string();
    if (title.empty()) title = fs::path(dir).lexically_normal().filename().string();
    const auto rows = agave::monitoring::write_sweep_summary(dir);
    std::cout << (fs::path(dir) / "sweep.csv").string() << ": " << rows.size() << " run(s)\n";
    agave::monitoring::plot_sweep(rows, png, title);
    std::cout << png << "\n";
  } catch (const std::exception& e) {
    std::cerr << "agave_sweep_plot: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
