// agave_sweep_plot <sweep dir> [--png FILE] [--title TEXT]: writes <sweep dir>/sweep.csv from
// the runs' summary.json files and plots test bits/dim and KL against each swept key (sweep.png).
#include <CLI/CLI.hpp>

#include <exception>
#include <filesystem>
#include <iostream>
#include <string>

#include "io/atomic_file.h"
#include "launcher/entry_point.h"
#include "monitoring/sweep_summary.h"
#include "version/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "agave_sweep_plot: sweep.csv and a plot of test bits/dim and KL against each swept key"};
  app.set_version_flag("--version", agave::version::describe("agave_sweep_plot"));
  std::string dir, png, title;
  app.add_option("dir", dir,
                 "sweep folder, <run.output_dir>/<run.name>: one folder per run with its "
                 "summary.json")
      ->required();
  app.add_option("--png", png, "plot to write (default: <dir>/sweep.png)");
  app.add_option("--title", title, "plot title (default: the sweep folder's name)");
  if (const auto code = agave::launcher::parse_command_line(app, argc, argv)) return *code;
  if (!std::filesystem::is_directory(dir)) {  // the user's to fix, like any argument error
    std::cerr << "agave_sweep_plot: error: " << dir << ": no such folder\n";
    return code(agave::launcher::ExitCode::kUserError);
  }
  return agave::launcher::guarded_main("agave_sweep_plot", [&] {
    namespace fs = std::filesystem;
    if (png.empty()) png = (fs::path(dir) / "sweep.png").string();
    if (title.empty()) title = fs::path(dir).lexically_normal().filename().string();
    const auto rows = agave::monitoring::write_sweep_summary(dir, agave::io::write_file_atomically);
    std::cout << (fs::path(dir) / "sweep.csv").string() << ": " << rows.size() << " run(s)\n";
    agave::monitoring::plot_sweep(rows, png, title);
    std::cout << png << "\n";
    return code(agave::launcher::ExitCode::kOk);
  });
}
