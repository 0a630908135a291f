#pragma once
// Training phases: which parameters train and which loss terms count (paper §4: pretrain the
// VAE and the PixelCNN, then train everything; Appendix C: continue without the aux term).
#include <cstdint>
#include <string>
#include <vector>

#include "model/agave.h"
#include "trainer/options.h"

namespace agave::trainer {

struct PhaseSpec {
  PhaseKind kind = PhaseKind::kJoint;
  bool train_vae = true;
  bool train_pixelcnn = true;
  model::LossSelection terms;  // what the forward computes and the loss includes
  double lambda = 1.0;         // KL weight of the training loss
  double free_bits = 0.0;      // the VAE's kl_min during this phase
  model::PixelCnnInput pixelcnn_input = model::PixelCnnInput::kFz;
};

// The kind's parameters and terms, with `loss.lambda` and the model's free bits, except that
// no_aux is the standard ELBO of Eq. (6) (λ = 1, free bits 0); then what `phase` sets itself.
// Table 1's baselines (`model` vae_only, pixelcnn_only) never train the half they do not use
// and drop the terms that are 0 for them: an unused half with zero gradients would still be
// all-reduced, stepped by optim::Adamax and averaged by the EMA on every step.
PhaseSpec phase_spec(const PhaseOptions& phase, const LossOptions& loss, double model_free_bits,
                     model::ModelKind model);

// "pixel + aux + KL", for log lines and errors.
std::string terms_text(const model::LossSelection& terms);

// Maps a global step to its phase.
class PhaseSchedule {
 public:
  explicit PhaseSchedule(std::vector<PhaseOptions> phases);
  // Index of the phase that step `step` (0-based) belongs to; the last phase past the end.
  size_t index_at(int64_t step) const;
  const PhaseOptions& at(int64_t step) const { return phases_[index_at(step)]; }
  int64_t total_steps() const { return total_; }
  int64_t phase_start(size_t index) const { return starts_[index]; }
  size_t size() const { return phases_.size(); }

 private:
  std::vector<PhaseOptions> phases_;
  std::vector<int64_t> starts_;
  int64_t total_ = 0;
};

}  // namespace agave::trainer
