#include "checkpoint/training_state.h"

namespace agave::checkpoint {

namespace keys {
std::string model(const std::string& name) { return "model/" + name; }
std::string ema(const std::string& name) { return "ema/" + name; }
std::string optim(const std::string& parameter, const std::string& field) {
  return "optim/" + parameter + "/" + field;
}
}  // namespace keys

TrainingState::TrainingState(torch::nn::Module& model, model::Ema& ema, optim::Adamax& optimizer)
    : ema_(ema) {
  for (auto& kv : model.named_parameters()) tensors_[keys::model(kv.key())] = kv.value();
  for (auto& kv : model.named_buffers()) tensors_[keys::model(kv.key())] = kv.value();
  for (auto& kv : ema.shadow()) tensors_[keys::ema(kv.key())] = kv.value();
  const auto params = model.named_parameters();
  auto& states = optimizer.states();
  for (size_t i = 0; i < params.size(); ++i) {
    auto& st = states[i];
    const auto& p = params[i].value();
    if (!st.exp_avg.defined()) {
      st.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      st.exp_inf = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    const std::string& name = params[i].key();
    tensors_[keys::optim(name, "exp_avg")] = st.exp_avg;
    tensors_[keys::optim(name, "exp_inf")] = st.exp_inf;
    const std::string step = keys::optim(name, "step");
    tensors_[step] = torch::tensor(st.step, torch::kInt64);
    steps_.push_back({name, step, &st});
  }
}

void TrainingState::apply_loaded_steps() {
  for (auto& s : steps_) {
    s.state->step = tensors_.at(s.key).item<int64_t>();
    ema_.set_num_updates(s.parameter, s.state->step);
  }
}

TensorMap evaluation_weights(torch::nn::Module& model, bool use_ema) {
  TensorMap state;
  for (auto& kv : model.named_parameters()) {
    state[use_ema ? keys::ema(kv.key()) : keys::model(kv.key())] = kv.value();
  }
  for (auto& kv : model.named_buffers()) state[keys::model(kv.key())] = kv.value();
  return state;
}

}  // namespace agave::checkpoint
