#pragma once
// The table of a sweep: one row per run, read from each run's summary.json, written as CSV
// (and plotted by agave_sweep_plot).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace agave::monitoring {

struct SweepRow {
  std::string run;
  std::string lambda;  // sweep values as in the run's labels; "" when not swept
  std::string aux_resolution;
  std::string color_bins;
  std::map<std::string, std::string> labels;  // every sweep value of the run, by label
  double test_elbo_bpd = 0;
  double test_iw_bpd = 0;
  double test_kl_bpd = 0;
  double test_aux_bpd = 0;  // NaN when the summary has none (pixelcnn_only, older runs)
  double test_vae_bpd = 0;
  std::string weights;  // "ema" or "live"; "" in older summaries
  int64_t test_images = 0;
  int64_t steps = 0;
  // Latent use (docs/metrics.md, "Latent use"): NaN when the summary has none (pixelcnn_only,
  // summaries older than issue 33).
  double test_pixel_bpd = 0;
  double test_pixel_shuffled_bpd = 0;
  double test_latent_use_bpd = 0;
  double test_latent_use_bpd_stderr = 0;
  std::vector<double> test_kl_bpd_layers;  // bottom first; empty when the summary has none
  double test_active_latent_channels = 0;
  double test_latent_channels = 0;
};

// Rows of every <sweep_dir>/<run>/summary.json (runs without one, still training or failed,
// are left out), sorted by the values of lambda, aux_resolution, color_bins, then the other
// labels by name (numerically where both are numbers), then run name.
// Throws naming the file when a summary.json is unreadable or lacks a field, unless
// `unreadable` is given: then such runs are left out and listed there as (run, why), so one
// truncated file does not cost the table of every other run.
std::vector<SweepRow> read_sweep(
    const std::string& sweep_dir,
    std::vector<std::pair<std::string, std::string>>* unreadable = nullptr);

// (run, error) of every <sweep_dir>/<run>/failed.json: runs of a sweep that failed (the
// trainer writes it and goes on with the next run), sorted by run name.
std::vector<std::pair<std::string, std::string>> read_failed_runs(const std::string& sweep_dir);

// The rows as CSV with the header
// run,lambda,aux_resolution,color_bins,test_elbo_bpd,test_iw_bpd,test_kl_bpd,test_aux_bpd,
// test_vae_bpd,weights,test_images,steps,test_pixel_bpd,test_pixel_shuffled_bpd,
// test_latent_use_bpd,test_latent_use_bpd_stderr,test_kl_bpd_layers,test_active_latent_channels,
// test_latent_channels (the latent-use columns last, so readers of the older columns by position
// still read them; test_kl_bpd_layers joins the layers' values with ';').
std::string sweep_csv(const std::vector<SweepRow>& rows);

// Writes a whole file (the caller's atomic write: a reader of sweep.csv must never see it
// half written, and this library does no file replacement of its own).
using WriteFile = std::function<void(const std::string& path, const std::string& text)>;

// read_sweep, then sweep_csv written to <sweep_dir>/sweep.csv with `write`; returns the rows.
std::vector<SweepRow> write_sweep_summary(
    const std::string& sweep_dir, const WriteFile& write,
    std::vector<std::pair<std::string, std::string>>* unreadable = nullptr);

// The labels that distinguish the rows (two or more values among them): lambda,
// aux_resolution, color_bins first (the paper's axes), then the others by name.
std::vector<std::string> swept_keys(const std::vector<SweepRow>& rows);

// The table a sweep prints at its end: a line "constants: k=v, ..." (the given constants, then
// labels that every row has with one value; no line when there are none), a header with one
// column per swept key, then one line per row. The run column is kRunColumn wide, so lines of
// failed runs printed after it line up.
inline constexpr int kRunColumn = 44;
std::string sweep_table(const std::vector<SweepRow>& rows,
                        const std::vector<std::pair<std::string, std::string>>& constants);

// Plots test bits/dim (ELBO and IW bound) and KL against each swept key as a PNG with gnuplot:
// one row of two panels (bits/dim, KL) per key, 1200x500 pixels each, with one line per value
// of the other swept keys. A key whose values are all numbers gets a numeric axis (log2 for
// positive values spanning a factor of 4 or more), any other key one tick per value. Without a
// swept key the x axis lists the runs. Throws when there is nothing to plot or gnuplot fails
// (one line, with gnuplot's message). `title` heads the picture.
void plot_sweep(const std::vector<SweepRow>& rows, const std::string& png_path,
                const std::string& title = "");

}  // namespace agave::monitoring
