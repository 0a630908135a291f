#pragma once
// One logged training window, the record every sink reads: the Prometheus exporter, the JSONL
// log and the step line on stdout. Each field is named once, in visit_fields below; the JSON
// keys and the line's labels come from there, so a new field is one line here.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace agave::monitoring {

// A logged step, or a window of `window_steps` steps whose values are means.
struct StepRecord {
  int64_t step = 0;         // global step after this window (1-based)
  int64_t total_steps = 0;  // steps of the whole run
  std::string phase;        // pretrain_vae | pretrain_pixelcnn | joint | no_aux
  double loss_bpd = 0;      // the phase's training loss
  double pixel_bpd = 0;
  double aux_bpd = 0;
  double kl_bpd = 0;
  double kl_nats = 0;  // KL(q(z|x)||p(z)) per image
  double images_per_second = 0;
  double step_seconds = 0;          // mean wall time of one step in the window
  double compute_seconds = 0;       // mean forward + backward + optimizer time
  double allreduce_seconds = 0;     // mean time spent waiting on gradient all-reduce
  double data_wait_seconds = 0;     // mean time spent waiting for the next batch
  double allreduce_share = 0;       // allreduce_seconds / step_seconds
  double data_wait_share = 0;       // data_wait_seconds / step_seconds
  int64_t steps_done = 0;           // optimizer steps taken by this run so far (absolute)
  int64_t skipped_steps_total = 0;  // non-finite steps skipped by this run so far (absolute)
  int64_t window_steps = 1;         // steps the means cover; histograms observe the mean that often
  int64_t ranks = 1;                // ranks of the run
  double lr = 0;                    // the optimizer's learning rate at the window's end
  std::string time;                 // UTC at the window's end, ISO-8601 to the second
  double elapsed_seconds = 0;       // since this process started the run
  // To the end of the run: the steps left in each phase at that phase's cost per step, and the
  // evaluations and checkpoints still to come (trainer/run_eta.h); < 0: unknown.
  double eta_seconds = -1;
  bool eta_estimated = false;  // a part of it not measured yet (a phase not run): "ETA ~…"
};

// How a number shows in the step line: kFixed with `digits` decimals, kGeneral as short as
// it reads exactly (a learning rate: 0.002, 1e-05), kDuration as "4 min 05 s".
enum class Show { kFixed, kGeneral, kDuration };

// How a field shows in the step line: after `label` (or before, when `value_first`),
// multiplied by `scale`. An empty label: JSON only.
struct LineStyle {
  const char* label = "";
  int digits = 3;
  const char* unit = "";
  double scale = 1.0;
  bool value_first = false;  // "12.3 img/s" rather than "img/s 12.3"
  Show show = Show::kFixed;
  bool approximate = false;  // "~" before the value: an estimate
};

// Calls v(json_name, value, style) for every field, in line order.
template <class Visit>
void visit_fields(const StepRecord& r, Visit&& v) {
  v("time", r.time, LineStyle{});
  v("step", r.step, LineStyle{});
  v("total_steps", r.total_steps, LineStyle{});
  v("phase", r.phase, LineStyle{});
  v("loss_bpd", r.loss_bpd, LineStyle{"loss"});
  v("pixel_bpd", r.pixel_bpd, LineStyle{"pixel"});
  v("aux_bpd", r.aux_bpd, LineStyle{"aux"});
  v("kl_bpd", r.kl_bpd, LineStyle{"kl", 3, " bits/dim"});
  v("kl_nats", r.kl_nats, LineStyle{});
  v("images_per_second", r.images_per_second, LineStyle{"img/s", 1, "", 1.0, true});
  v("step_seconds", r.step_seconds, LineStyle{});
  v("compute_seconds", r.compute_seconds, LineStyle{});
  v("allreduce_seconds", r.allreduce_seconds, LineStyle{});
  v("data_wait_seconds", r.data_wait_seconds, LineStyle{});
  v("allreduce_share", r.allreduce_share, LineStyle{"comm", 1, "%", 100.0});
  v("data_wait_share", r.data_wait_share, LineStyle{"data", 1, "%", 100.0});
  v("steps_done", r.steps_done, LineStyle{});
  v("skipped_steps_total", r.skipped_steps_total, LineStyle{});
  v("window_steps", r.window_steps, LineStyle{});
  v("ranks", r.ranks, LineStyle{});
  v("lr", r.lr, LineStyle{"lr", 0, "", 1.0, false, Show::kGeneral});
  v("elapsed_seconds", r.elapsed_seconds, LineStyle{"elapsed", 0, "", 1.0, false, Show::kDuration});
  v("eta_seconds", r.eta_seconds,
    LineStyle{"ETA", 0, "", 1.0, false, Show::kDuration, r.eta_estimated && r.eta_seconds >= 0});
  v("eta_estimated", r.eta_estimated, LineStyle{});
}

// Every field under its name.
nlohmann::json to_json(const StepRecord& r);

// "step 10/100 joint  loss 3.412  pixel ... bits/dim  12.3 img/s  comm 3.1%  data 0.4%  lr 0.002
//  elapsed 4 min 05 s  ETA ~1 h 02 min" ("~": estimated). The time leads the printed line, before
//  the run's tag
// (trainer/step_report.h), so "[run] step N/T" stays one piece for whatever greps logs.
std::string step_line(const StepRecord& r);

}  // namespace agave::monitoring
