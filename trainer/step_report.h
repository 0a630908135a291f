#pragma once
// Everything a run reports, through one place: the log window of training steps (one
// monitoring::StepRecord per window feeds Prometheus, the JSONL log and the stdout line), and
// the skip, evaluation and checkpoint events. Sinks are optional: ranks other than the run's
// rank 0 print nothing and may export to Prometheus only.
#include <chrono>
#include <cstdint>
#include <string>

#include "checkpoint/sharded_checkpoint.h"
#include "monitoring/metrics_exporter.h"
#include "monitoring/metrics_log.h"
#include "monitoring/progress_bar.h"
#include "monitoring/step_record.h"
#include "trainer/evaluator.h"
#include "trainer/options.h"
#include "trainer/run_eta.h"
#include "trainer/train_step.h"

namespace agave::trainer {

struct ReportSinks {
  monitoring::MetricsExporter* exporter = nullptr;
  monitoring::MetricsLog* log = nullptr;
  bool print = false;  // stdout and stderr lines (the run's rank 0)
};

class StepReport {
 public:
  // `to_bpd`: nats per image → bits per dimension of x. `plan`: what the ETA covers.
  StepReport(std::string run_name, int ranks, WorkPlan plan, double to_bpd, ReportSinks sinks);

  // One step into the current window (skipped steps count for time, not for the loss terms).
  void add(const StepOutcome& outcome, double step_seconds, double data_seconds);
  // The window's means as one record to every sink; starts the next window. `step`: steps
  // done (1-based); `skipped_total`: the run's skipped steps so far; `lr`: the optimizer's
  // learning rate now.
  monitoring::StepRecord flush(int64_t step, PhaseKind phase, int64_t skipped_total, double lr);

  void skipped(int64_t step, const std::string& reason) const;
  // Before an evaluation of `subset` test images (0: all) after `step` steps: what it reads
  // and how long it should take. Returns the label of its progress lines.
  std::string evaluation_starts(int64_t step, bool final, int64_t subset) const;
  // `pictures_seconds`: the picture sheets drawn with it (0: none).
  void evaluated(int64_t step, const EvalResult& r, double pictures_seconds);
  void checkpointed(int64_t step, const checkpoint::SaveResult& saved);
  // A plain "[run] ..." line on stdout (rank 0).
  void say(const std::string& text) const;
  // A progress bar on the same terminal (null: none): lines clear it as they print. It must
  // outlive this report or be detached (nullptr) first.
  void set_progress_bar(monitoring::ProgressBar* bar) { bar_ = bar; }

 private:
  struct Window {
    double pixel = 0, aux = 0, kl = 0, loss = 0, images = 0;
    double step_s = 0, compute_s = 0, comm_s = 0, data_s = 0;
    int64_t steps = 0;
  };
  std::string run_;
  int ranks_;
  WorkPlan plan_;
  int64_t total_steps_;
  double to_bpd_;
  ReportSinks sinks_;
  std::string clear_prefix() const;
  void print(const std::string& line) const;  // stdout, after clearing the bar

  Window w_;
  monitoring::ProgressBar* bar_ = nullptr;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started_ = Clock::now();
  MeasuredCosts measured_;  // for the ETA; step times smoothed over a phase kind's windows
};

}  // namespace agave::trainer
