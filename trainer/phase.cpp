#include "trainer/phase.h"

#include <stdexcept>

namespace agave::trainer {

PhaseSpec phase_spec(PhaseKind kind) {
  PhaseSpec s;
  s.kind = kind;
  switch (kind) {
    case PhaseKind::kPretrainVae:
      // The VAE alone: reconstruct y and pay λ·KL; the PixelCNN pass is skipped entirely.
      s.train_pixelcnn = false;
      s.terms = {/*pixel=*/false, /*aux=*/true, /*kl=*/true};
      break;
    case PhaseKind::kPretrainPixelCnn:
      // The PixelCNN on f(z) of the (frozen) VAE: the pixel term only.
      s.train_vae = false;
      s.terms = {/*pixel=*/true, /*aux=*/false, /*kl=*/false};
      break;
    case PhaseKind::kNoAux:
      s.terms = {/*pixel=*/true, /*aux=*/false, /*kl=*/true};
      break;
    case PhaseKind::kJoint:
      break;
  }
  return s;
}

PhaseSchedule::PhaseSchedule(std::vector<PhaseOptions> phases) : phases_(std::move(phases)) {
  if (phases_.empty()) throw std::invalid_argument("PhaseSchedule: no phases");
  for (const auto& p : phases_) {
    starts_.push_back(total_);
    total_ += p.steps;
  }
}

size_t PhaseSchedule::index_at(int64_t step) const {
  for (size_t i = phases_.size(); i-- > 0;) {
    if (step >= starts_[i]) return i;
  }
  return 0;
}

}  // namespace agave::trainer
