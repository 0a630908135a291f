#pragma once
// Typed options of training (YAML sections `loss`, `train`, `eval`, `checkpoint`).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/options.h"

namespace agave::trainer {

// Which parameters train and which loss terms count, per the paper's schedule.
enum class PhaseKind {
  kPretrainVae,       // VAE parameters; aux + lambda*KL
  kPretrainPixelCnn,  // PixelCNN parameters; pixel term
  kJoint,             // all parameters; all terms
  kNoAux,  // all parameters; pixel + KL, λ = 1, no free bits: Eq. (6), the paper's App. C control
};

inline const char* phase_name(PhaseKind k) {
  switch (k) {
    case PhaseKind::kPretrainVae:
      return "pretrain_vae";
    case PhaseKind::kPretrainPixelCnn:
      return "pretrain_pixelcnn";
    case PhaseKind::kNoAux:
      return "no_aux";
    default:
      return "joint";
  }
}

// The terms of the training loss a phase may select (train.phases[].terms).
enum class LossTerm { kPixel, kAux, kKl };

inline const char* loss_term_name(LossTerm t) {
  switch (t) {
    case LossTerm::kAux:
      return "aux";
    case LossTerm::kKl:
      return "kl";
    default:
      return "pixel";
  }
}

// Whether `terms` selects `t`.
inline bool& selects(model::LossSelection& terms, LossTerm t) {
  return t == LossTerm::kPixel ? terms.pixel : t == LossTerm::kAux ? terms.aux : terms.kl;
}
inline bool selects(const model::LossSelection& terms, LossTerm t) {
  return t == LossTerm::kPixel ? terms.pixel : t == LossTerm::kAux ? terms.aux : terms.kl;
}

// A phase's loss settings default to its kind's (trainer/phase.h); each may be set per phase.
struct PhaseOptions {
  PhaseOptions() = default;
  PhaseOptions(PhaseKind k, int64_t n) : kind(k), steps(n) {}  // the loss settings unset

  PhaseKind kind = PhaseKind::kJoint;
  int64_t steps = 0;
  std::optional<double> lambda;               // KL weight; default loss.lambda (no_aux: 1, Eq. 6)
  std::optional<double> free_bits;            // default model.vae.free_bits (no_aux: 0, Eq. 6)
  std::optional<model::LossSelection> terms;  // default: the kind's terms
  // pretrain_pixelcnn only: false trains the PixelCNN without f(z), the conditioning stream's
  // contribution zero (what the parallel schedule's PixelCNN half trains).
  bool conditioned = true;
};

// How the two pretraining phases run (paper §4: "we independently pretrain the VAE and
// pixelCNN in parallel"). kSequential: one after the other on all ranks, the PixelCNN on the
// frozen VAE's f(z). kParallel: two halves of the ranks at once, the PixelCNN unconditioned;
// then every rank merges both (trainer/parallel_pretraining.h).
enum class PretrainSchedule { kSequential, kParallel };

inline const char* pretrain_schedule_name(PretrainSchedule s) {
  return s == PretrainSchedule::kParallel ? "parallel" : "sequential";
}

struct LossOptions {
  double lambda = 2.0;  // weight of KL(q(z|x) || p(z)) in the training loss
};

// How a run's forward pass computes: "auto" is bf16 autocast on CUDA and, on a CPU, whichever
// of bf16 and fp32 ran a probe convolution faster (trainer/precision.h says why).
enum class Precision { kAuto, kFp32, kBf16 };

inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    default:
      return "auto";
  }
}

enum class OptimizerKind { kAdamax };

inline const char* optimizer_name(OptimizerKind) { return "adamax"; }

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdamax;
  double lr = 0.002;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

struct TrainOptions {
  int64_t batch_size = 64;  // global: split evenly over the ranks of one run
  int64_t steps = 0;        // total; the sum of the phases
  std::vector<PhaseOptions> phases;
  PretrainSchedule pretrain = PretrainSchedule::kSequential;
  // parallel: how many of a run's ranks pretrain the VAE (the others the PixelCNN); 0: half.
  int64_t pretrain_vae_ranks = 0;
  OptimizerOptions optimizer;
  double grad_clip = 0.0;     // max global gradient norm; 0 = off
  double ema_decay = 0.9995;  // Polyak averaging of the weights used for eval and sampling
  bool ema_warmup = true;     // d_t = min(decay, (1 + t) / (10 + t)): see model/ema.h
  Precision precision = Precision::kAuto;
  int64_t max_nonfinite_steps = 20;  // consecutive skipped steps before aborting
};

struct EvalOptions {
  int64_t every = 0;                 // steps between evaluations; 0 = only at the end
  bool at_start = false;             // also evaluate the initial model (fresh runs): a baseline
  int64_t importance_samples = 150;  // K of the importance-weighted bound
  int64_t subset = 1000;             // test images of periodic evaluations; 0 = the whole split
  int64_t final_subset = 0;          // test images of the final evaluation; 0 = the whole split
  int64_t batch_size = 64;
  bool use_ema = true;
  int64_t sample_images = 8;        // latents / test images per picture sheet; 0 = no sheets
  int64_t samples_per_latent = 10;  // PixelCNN samples per f(z) on the samples sheet
};

// The test images an evaluation of `subset` (0: all) reads from a split of `split` images.
inline int64_t evaluated_images(int64_t subset, int64_t split) {
  return subset > 0 && subset < split ? subset : split;
}

struct CheckpointOptions {
  std::string dir;      // empty: <run output>/checkpoints
  int64_t every = 500;  // steps between checkpoints; 0 = only at the end
  int64_t keep = 3;     // newest complete checkpoints kept
};

}  // namespace agave::trainer
