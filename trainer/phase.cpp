#include "trainer/phase.h"

#include <stdexcept>

namespace agave::trainer {

PhaseSpec phase_spec(const PhaseOptions& phase, const LossOptions& loss, double model_free_bits,
                     model::ModelKind model) {
  PhaseSpec s;
  s.kind = phase.kind;
  s.lambda = loss.lambda;
  s.free_bits = model_free_bits;
  switch (phase.kind) {
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
      s.lambda = 1.0;
      s.free_bits = 0.0;
      break;
    case PhaseKind::kJoint:
      break;
  }
  if (phase.lambda) s.lambda = *phase.lambda;
  if (phase.free_bits) s.free_bits = *phase.free_bits;
  if (phase.terms) s.terms = *phase.terms;
  if (!phase.conditioned) s.pixelcnn_input = model::PixelCnnInput::kNone;
  // A kind trains only the parts it has, on the terms that are not 0 for it.
  if (!model::has_latents(model)) {
    s.train_vae = false;
    s.terms.kl = false;
  }
  if (!model::has_pixelcnn(model)) s.train_pixelcnn = false;
  if (!model::has_aux_term(model)) s.terms.aux = false;
  return s;
}

std::string terms_text(const model::LossSelection& terms) {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (on) s += (s.empty() ? "" : " + ") + std::string(name);
  };
  add(terms.pixel, "pixel");
  add(terms.aux, "aux");
  add(terms.kl, "KL");
  return s.empty() ? "none" : s;
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
