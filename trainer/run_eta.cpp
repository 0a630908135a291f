#include "trainer/run_eta.h"

#include <algorithm>

namespace agave::trainer {
namespace {

bool trains_vae(PhaseKind k, const WorkPlan& plan) {
  return plan.has_latents && k != PhaseKind::kPretrainPixelCnn;
}
bool trains_pixelcnn(PhaseKind k, const WorkPlan& plan) {
  return plan.has_pixelcnn && k != PhaseKind::kPretrainVae;
}

// Seconds per step of each network (< 0: unknown): from the phases measured alone, from a phase
// of both less the other, else from the other by kPixelCnnPerVaeStep.
struct NetworkCosts {
  double vae = -1, pixelcnn = -1;
};

NetworkCosts network_costs(const WorkPlan& plan, const MeasuredCosts& measured) {
  NetworkCosts c;
  if (!plan.has_latents) c.vae = 0;
  if (!plan.has_pixelcnn) c.pixelcnn = 0;
  double both = -1;
  for (const auto& [kind, seconds] : measured.step_seconds) {
    if (seconds <= 0) continue;
    const bool vae = trains_vae(kind, plan), pixelcnn = trains_pixelcnn(kind, plan);
    if (vae && pixelcnn) {
      both = seconds;
    } else if (vae) {
      c.vae = seconds;
    } else if (pixelcnn) {
      c.pixelcnn = seconds;
    }
  }
  if (both > 0 && c.vae < 0 && c.pixelcnn < 0) {
    c.vae = both / (1 + kPixelCnnPerVaeStep);
    c.pixelcnn = both - c.vae;
  } else if (both > 0 && c.vae < 0) {
    c.vae = std::max(0.0, both - c.pixelcnn);
  } else if (both > 0 && c.pixelcnn < 0) {
    c.pixelcnn = std::max(0.0, both - c.vae);
  }
  if (c.vae < 0 && c.pixelcnn > 0) c.vae = c.pixelcnn / kPixelCnnPerVaeStep;
  if (c.pixelcnn < 0 && c.vae > 0) c.pixelcnn = c.vae * kPixelCnnPerVaeStep;
  return c;
}

// A step of phase kind `kind`: measured, or estimated from the networks it trains.
Eta step_cost(const WorkPlan& plan, const MeasuredCosts& measured, PhaseKind kind) {
  const auto it = measured.step_seconds.find(kind);
  if (it != measured.step_seconds.end() && it->second > 0) return {it->second, false};
  const auto c = network_costs(plan, measured);
  const bool vae = trains_vae(kind, plan), pixelcnn = trains_pixelcnn(kind, plan);
  if ((vae && c.vae < 0) || (pixelcnn && c.pixelcnn < 0)) return {};
  return {(vae ? c.vae : 0.0) + (pixelcnn ? c.pixelcnn : 0.0), true};
}

// Multiples m of `every` (m ≥ 1) with from ≤ m < to.
int64_t multiples_in(int64_t from, int64_t to, int64_t every) {
  const int64_t first = std::max<int64_t>(from, 1);
  if (every <= 0 || to <= first) return 0;
  return (to - 1) / every - (first - 1) / every;
}

void add(Eta& sum, const Eta& part, double times = 1) {
  if (sum.seconds < 0 || times <= 0) return;
  if (part.seconds < 0) {
    sum.seconds = -1;
    return;
  }
  sum.seconds += times * part.seconds;
  sum.estimated = sum.estimated || part.estimated;
}

}  // namespace

Eta evaluation_time(const WorkPlan& plan, const MeasuredCosts& measured, int64_t subset) {
  const double passes = static_cast<double>(evaluated_images(subset, plan.test_images)) *
                        static_cast<double>(plan.eval.importance_samples + 1);
  Eta e{0, false};
  if (measured.eval_pass_seconds > 0) {
    e.seconds = passes * measured.eval_pass_seconds;
  } else {
    // A training step of the whole model, forward and backward: about three forward passes of
    // each image of the global batch.
    const Eta step = step_cost(plan, measured, PhaseKind::kJoint);
    if (step.seconds < 0) return {};
    e = {passes * step.seconds /
             (3.0 * static_cast<double>(std::max<int64_t>(1, plan.global_batch))),
         true};
  }
  if (plan.eval.sample_images > 0) {
    e.seconds += measured.pictures_seconds;
    e.estimated = e.estimated || measured.pictures_seconds <= 0;
  }
  return e;
}

Eta remaining_time(const WorkPlan& plan, const MeasuredCosts& measured, int64_t steps_done) {
  Eta left{0, false};
  int64_t start = 0;
  for (const auto& phase : plan.phases) {
    const int64_t end = start + phase.steps;
    const int64_t steps = end - std::max(start, steps_done);
    if (steps > 0) add(left, step_cost(plan, measured, phase.kind), static_cast<double>(steps));
    start = end;
  }
  const int64_t total = start;
  add(left, evaluation_time(plan, measured, plan.eval.subset),
      static_cast<double>(multiples_in(steps_done, total, plan.eval.every)));
  if (plan.final_eval) add(left, evaluation_time(plan, measured, plan.eval.final_subset));
  // Checkpoints: every checkpoint.every steps and at the last one.
  const int64_t every = plan.checkpoint_every;
  const bool last_extra = every <= 0 || total % every != 0;
  const int64_t checkpoints =
      steps_done > total ? 0 : multiples_in(steps_done, total + 1, every) + (last_extra ? 1 : 0);
  add(left, {measured.checkpoint_seconds, false}, static_cast<double>(checkpoints));
  return left;
}

}  // namespace agave::trainer
