#include "trainer/step_report.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iostream>

namespace agave::trainer {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

StepReport::StepReport(std::string run_name, int ranks, int64_t total_steps, double to_bpd,
                       ReportSinks sinks)
    : run_(std::move(run_name)),
      ranks_(ranks),
      total_steps_(total_steps),
      to_bpd_(to_bpd),
      sinks_(sinks) {}

void StepReport::add(const StepOutcome& o, double step_seconds, double data_seconds) {
  w_.pixel += o.pixel_sum;
  w_.aux += o.aux_sum;
  w_.kl += o.kl_sum;
  w_.loss += o.loss_sum;
  w_.images += o.images;
  w_.step_s += step_seconds;
  w_.compute_s += o.compute_seconds;
  w_.comm_s += o.allreduce_seconds;
  w_.data_s += data_seconds;
  ++w_.steps;
}

monitoring::StepRecord StepReport::flush(int64_t step, PhaseKind phase, int64_t skipped_total,
                                         double lr) {
  const double imgs = std::max(1.0, w_.images);
  const double steps = static_cast<double>(std::max<int64_t>(1, w_.steps));
  const double step_s = std::max(1e-9, w_.step_s);
  monitoring::StepRecord r;
  r.step = step;
  r.total_steps = total_steps_;
  r.phase = phase_name(phase);
  r.loss_bpd = w_.loss / imgs * to_bpd_;
  r.pixel_bpd = w_.pixel / imgs * to_bpd_;
  r.aux_bpd = w_.aux / imgs * to_bpd_;
  r.kl_bpd = w_.kl / imgs * to_bpd_;
  r.kl_nats = w_.kl / imgs;
  r.images_per_second = w_.images / step_s;
  r.step_seconds = w_.step_s / steps;
  r.compute_seconds = w_.compute_s / steps;
  r.allreduce_seconds = w_.comm_s / steps;
  r.data_wait_seconds = w_.data_s / steps;
  r.allreduce_share = w_.comm_s / step_s;
  r.data_wait_share = w_.data_s / step_s;
  r.steps_done = step - skipped_total;
  r.skipped_steps_total = skipped_total;
  r.window_steps = w_.steps;
  r.ranks = ranks_;
  r.lr = lr;
  // Wall time per step between flushes, evaluations and checkpoints included, smoothed over
  // recent windows; the first window counts its steps only, not the run's set-up before them.
  const auto now = Clock::now();
  const double window_wall =
      last_flush_ == Clock::time_point{} ? w_.step_s : seconds_between(last_flush_, now);
  const double per_step = window_wall / steps;
  seconds_per_step_ = seconds_per_step_ > 0 ? 0.7 * seconds_per_step_ + 0.3 * per_step : per_step;
  last_flush_ = now;
  r.eta_seconds =
      static_cast<double>(std::max<int64_t>(0, total_steps_ - step)) * seconds_per_step_;
  r.elapsed_seconds = seconds_between(started_, now);
  r.time = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)));
  w_ = Window{};
  if (sinks_.exporter) sinks_.exporter->record_step(r);
  if (sinks_.log) {
    auto j = monitoring::to_json(r);
    j["event"] = "train";
    j["run"] = run_;
    sinks_.log->write(std::move(j));
  }
  if (sinks_.print) print(r.time + " [" + run_ + "] " + monitoring::step_line(r));
  return r;
}

void StepReport::skipped(int64_t step, const std::string& reason) const {
  if (sinks_.log) sinks_.log->write({{"event", "skip"}, {"step", step}, {"reason", reason}});
  if (sinks_.print) {
    std::cerr << clear_prefix() + "[" + run_ + "] step " + std::to_string(step) + ": " + reason +
                     ", skipped\n"
              << std::flush;
  }
}

void StepReport::evaluated(int64_t step, const EvalResult& r) const {
  if (sinks_.exporter) {
    sinks_.exporter->record_eval(
        {step, r.elbo_bpd, r.iw_bpd, r.kl_bpd, r.aux_bpd, r.vae_bpd, r.importance_samples});
  }
  if (sinks_.log) {
    auto j = to_json(r);
    j["event"] = "eval";
    j["run"] = run_;
    j["step"] = step;
    sinks_.log->write(std::move(j));
  }
  if (sinks_.print) say(fmt::format("eval step {}: {}", step, describe(r)));
}

void StepReport::checkpointed(int64_t step, const checkpoint::SaveResult& saved) const {
  if (sinks_.exporter) {
    sinks_.exporter->record_checkpoint(saved.seconds, static_cast<double>(saved.bytes));
  }
  if (sinks_.log) {
    sinks_.log->write({{"event", "checkpoint"},
                       {"step", step},
                       {"dir", saved.dir},
                       {"bytes", saved.bytes},
                       {"seconds", saved.seconds}});
  }
  if (sinks_.print) {
    say(fmt::format("checkpoint {} ({:.1f} MB in {:.2f} s)", saved.dir, saved.bytes / 1e6,
                    saved.seconds));
  }
}

std::string StepReport::clear_prefix() const { return bar_ ? bar_->clear_prefix() : ""; }

void StepReport::say(const std::string& text) const {
  if (sinks_.print) print("[" + run_ + "] " + text);
}

void StepReport::print(const std::string& line) const {
  // One string, one write: the bar's clearing stays with its line.
  std::cout << clear_prefix() + line + "\n" << std::flush;
}

}  // namespace agave::trainer
