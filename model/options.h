#pragma once
// Typed options of the AGAVE model. The launcher maps the YAML sections `model.vae`,
// `model.pixelcnn` and `aux` onto these; nothing here knows about YAML.
#include <torch/arg.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace agave::model {

// Which terms a forward computes and a loss includes. VAE pretraining turns `pixel` off,
// which also skips the PixelCNN pass; the no-aux fine-tune (paper App. C) turns `aux` off.
struct LossSelection {
  bool pixel = true;
  bool aux = true;
  bool kl = true;
};

// Bidirectional (ladder) ResNet VAE, after the IAF-VAE of Kingma et al. 2016.
struct VaeOptions {
  TORCH_ARG(int64_t, depth) = 2;               // stochastic layers
  TORCH_ARG(int64_t, width) = 64;              // hidden channels of the ResNet blocks
  TORCH_ARG(int64_t, latent_channels) = 8;     // latent channels per stochastic layer
  TORCH_ARG(int64_t, latent_resolution) = 14;  // spatial size of every latent layer
  TORCH_ARG(double, free_bits) = 0.0;          // kl_min in nats per channel per layer; 0 = off
  TORCH_ARG(int64_t, iaf_steps) = 0;           // inverse autoregressive flow steps; 0 = off
};

// How f(z) reaches the PixelCNN's gated resnets (model/pixelcnn.h describes both streams).
enum class PixelCnnConditioning {
  // The paper's (§4.1): one non-masked conv per gated-resnet position, each feeding its position.
  kPerLayer,
  // One map per resolution from a residual stack, shared by all gated resnets of that scale.
  kShared,
};

inline const char* pixelcnn_conditioning_name(PixelCnnConditioning c) {
  switch (c) {
    case PixelCnnConditioning::kPerLayer:
      return "per_layer";
    case PixelCnnConditioning::kShared:
      break;
  }
  return "shared";
}

// The inverse of pixelcnn_conditioning_name; throws std::invalid_argument naming the choices.
inline PixelCnnConditioning parse_pixelcnn_conditioning(const std::string& name) {
  for (auto c : {PixelCnnConditioning::kPerLayer, PixelCnnConditioning::kShared}) {
    if (name == pixelcnn_conditioning_name(c)) return c;
  }
  throw std::invalid_argument("unknown PixelCNN conditioning stream '" + name +
                              "'; allowed: per_layer, shared");
}

// Conditional PixelCNN++ (Salimans et al. 2017); CIFAR defaults are 5 / 160 / 10 / 0.5.
struct PixelCnnOptions {
  TORCH_ARG(int64_t, nr_resnet) = 5;
  TORCH_ARG(int64_t, nr_filters) = 160;
  TORCH_ARG(int64_t, nr_logistic_mix) = 10;
  TORCH_ARG(double, dropout) = 0.5;
  // kShared stays the built-in default so that models built from default options keep the
  // parameters (and checkpoints) they had before kPerLayer existed; the paper configs choose
  // per_layer.
  TORCH_ARG(PixelCnnConditioning, conditioning) = PixelCnnConditioning::kShared;
};

// The auxiliary image y: x average-pooled to `resolution` and scored with `color_bins` bins.
struct AuxOptions {
  TORCH_ARG(int64_t, resolution) = 32;
  TORCH_ARG(int64_t, color_bins) = 256;
};

// What is trained: AGAVE, or one of the paper's Table 1 baselines.
enum class ModelKind {
  kAgave,         // PixelCNN++ conditioned on f(z), plus the auxiliary term −ln p(y|z)
  kVaeOnly,       // the VAE alone: its decoder is the likelihood of x (y = x: full size, 256 bins)
  kPixelCnnOnly,  // PixelCNN++ alone, unconditional (no conditioning stream), no latents
};

inline const char* model_kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::kVaeOnly:
      return "vae_only";
    case ModelKind::kPixelCnnOnly:
      return "pixelcnn_only";
    case ModelKind::kAgave:
      break;
  }
  return "agave";
}

// What a kind is made of; callers ask these instead of naming kinds.
// Latents z (the VAE and f(z)): every kind but pixelcnn_only.
inline bool has_latents(ModelKind k) { return k != ModelKind::kPixelCnnOnly; }
// A PixelCNN that models x: every kind but vae_only (which still builds one's parameters,
// unused).
inline bool has_pixelcnn(ModelKind k) { return k != ModelKind::kVaeOnly; }
// The VAE decoder models x itself (y = x): the VAE alone, which has no PixelCNN.
inline bool decoder_models_x(ModelKind k) { return has_latents(k) && !has_pixelcnn(k); }
// The auxiliary term −ln p(y|z) beside the likelihood of x: AGAVE's two halves, the decoder
// modelling y and the PixelCNN modelling x given f(z).
inline bool has_aux_term(ModelKind k) { return has_latents(k) && has_pixelcnn(k); }

struct AgaveOptions {
  TORCH_ARG(ModelKind, kind) = ModelKind::kAgave;
  TORCH_ARG(int64_t, image_channels) = 3;
  TORCH_ARG(int64_t, image_size) = 32;  // H = W
  TORCH_ARG(VaeOptions, vae) = {};
  TORCH_ARG(PixelCnnOptions, pixelcnn) = {};
  TORCH_ARG(AuxOptions, aux) = {};
};

}  // namespace agave::model
