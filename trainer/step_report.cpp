#include "trainer/step_report.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iostream>

#include "trainer/phase.h"

namespace agave::trainer {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

StepReport::StepReport(std::string run_name, int ranks, WorkPlan plan, double to_bpd,
                       ReportSinks sinks)
    : run_(std::move(run_name)),
      ranks_(ranks),
      plan_(std::move(plan)),
      total_steps_(PhaseSchedule(plan_.phases).total_steps()),
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
  // A step's wall time (its data wait included; evaluations and checkpoints are measured on
  // their own), smoothed over the recent windows of the phase's kind.
  double& per_step = measured_.step_seconds[phase];
  per_step = per_step > 0 ? 0.7 * per_step + 0.3 * r.step_seconds : r.step_seconds;
  const Eta eta = remaining_time(plan_, measured_, step);
  r.eta_seconds = eta.seconds;
  r.eta_estimated = eta.estimated;
  if (bar_ && eta.seconds >= 0) bar_->set_eta(eta.seconds, eta.estimated);
  r.elapsed_seconds = seconds_between(started_, Clock::now());
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

std::string StepReport::evaluation_starts(int64_t step, bool final, int64_t subset) const {
  const std::string label = fmt::format("{}eval step {}", final ? "final " : "", step);
  const Eta eta = evaluation_time(plan_, measured_, subset);
  say(fmt::format("{} begins: {} test images at K={}, {} weights{}", label,
                  evaluated_images(subset, plan_.test_images), plan_.eval.importance_samples,
                  plan_.eval.use_ema ? "EMA" : "live",
                  eta.seconds < 0 ? ""
                                  : ", ETA " + std::string(eta.estimated ? "~" : "") +
                                        monitoring::ProgressBar::format_duration(eta.seconds)));
  return "[" + run_ + "] " + label;
}

void StepReport::evaluated(int64_t step, const EvalResult& r, double pictures_seconds) {
  if (r.images > 0 && r.seconds > 0) {
    measured_.eval_pass_seconds =
        r.seconds / (static_cast<double>(r.images) * static_cast<double>(r.importance_samples + 1));
  }
  if (pictures_seconds > 0) measured_.pictures_seconds = pictures_seconds;
  if (sinks_.exporter) {
    monitoring::EvalRecord e{step,      r.elbo_bpd,          r.iw_bpd, r.kl_bpd, r.aux_bpd,
                             r.vae_bpd, r.importance_samples};
    e.pixel_bpd = r.pixel_bpd;
    e.pixel_shuffled_bpd = r.pixel_shuffled_bpd;
    e.latent_use_bpd = r.latent_use_bpd;
    e.kl_bpd_layers = r.kl_bpd_layers;
    e.active_latent_channels = static_cast<double>(r.active_latent_channels);
    e.latent_channels = static_cast<double>(r.latent_channels);
    sinks_.exporter->record_eval(e);
  }
  if (sinks_.log) {
    auto j = to_json(r);
    j["event"] = "eval";
    j["run"] = run_;
    j["step"] = step;
    j["seconds"] = r.seconds;
    sinks_.log->write(std::move(j));
  }
  if (sinks_.print) say(fmt::format("eval step {}: {}", step, describe(r)));
}

void StepReport::checkpointed(int64_t step, const checkpoint::SaveResult& saved) {
  measured_.checkpoint_seconds = saved.seconds;
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
