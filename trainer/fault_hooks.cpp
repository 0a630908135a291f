#include "trainer/fault_hooks.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>

#include "trainer/stop_request.h"

namespace agave::trainer {
namespace {

enum class LossFault {
  kNone,
  kNan,
  kExit,
  kThrow,
  kStop,
  kSigstop,
  kSigstopEval,
  kStopEval,
  kSigstopPictures,
  kSlowPictures
};

class EnvironmentFaults : public FaultHooks {
 public:
  LossFault kind = LossFault::kNone;
  int64_t step = -1;
  int rank = -1;
  int64_t kill_after_shards_step = -1;

  void on_loss(int64_t s, int r, torch::Tensor& loss) override {
    if (s != step || r != rank) return;
    switch (kind) {
      case LossFault::kNan:
        loss = loss * std::numeric_limits<float>::quiet_NaN();
        break;
      case LossFault::kExit:
        std::cerr << "rank " << r << ": AGAVE_FAULT: exiting at step " << s << std::endl;
        std::_Exit(9);
      case LossFault::kThrow:
        throw std::runtime_error("AGAVE_FAULT: an error on this rank alone at step " +
                                 std::to_string(s));
      case LossFault::kStop:
        stop_requested() = true;
        break;
      case LossFault::kSigstop:
        std::cerr << "rank " << r << ": AGAVE_FAULT: SIGSTOP at step " << s << std::endl;
        std::raise(SIGSTOP);
        break;
      case LossFault::kSigstopEval:
      case LossFault::kStopEval:
      case LossFault::kSigstopPictures:
      case LossFault::kSlowPictures:
      case LossFault::kNone:
        break;
    }
  }
  void on_eval(int64_t s, int r) override {
    if (kind != LossFault::kSigstopEval || s != step || r != rank) return;
    std::cerr << "rank " << r << ": AGAVE_FAULT: SIGSTOP in the evaluation at step " << s
              << std::endl;
    std::raise(SIGSTOP);
  }
  void on_eval_batch(int64_t s, int r, int64_t /*done*/) override {
    if (kind != LossFault::kStopEval || s != step || r != rank) return;
    stop_requested() = true;
  }
  void on_pictures(int64_t s, int r) override {
    if (s != step || r != rank) return;
    if (kind == LossFault::kSigstopPictures) {
      std::cerr << "rank " << r << ": AGAVE_FAULT: SIGSTOP drawing the pictures of step " << s
                << std::endl;
      std::raise(SIGSTOP);
    } else if (kind == LossFault::kSlowPictures) {
      std::cerr << "rank " << r << ": AGAVE_FAULT: drawing the pictures of step " << s << " takes "
                << kSlowPicturesSeconds << " s longer" << std::endl;
      std::this_thread::sleep_for(std::chrono::seconds(kSlowPicturesSeconds));
    }
  }
  void after_checkpoint_shards(int64_t s) override {
    if (s == kill_after_shards_step) std::raise(SIGKILL);
  }
};

[[noreturn]] void bad(const char* var, const std::string& value, const char* form) {
  throw std::invalid_argument(std::string(var) + "='" + value + "': expected " + form);
}

int64_t number(const char* var, const std::string& value, const std::string& text,
               const char* form) {
  try {
    size_t used = 0;
    const int64_t v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  bad(var, value, form);
}

}  // namespace

std::shared_ptr<FaultHooks> fault_hooks_from_environment() {
  const char* loss = std::getenv("AGAVE_FAULT");
  const char* ckpt = std::getenv("AGAVE_FAULT_CHECKPOINT");
  if (loss == nullptr && ckpt == nullptr) return nullptr;
  auto f = std::make_shared<EnvironmentFaults>();
  if (loss != nullptr) {
    constexpr const char* form =
        "<nan|exit|throw|stop|sigstop|sigstop-eval|stop-eval|sigstop-pictures|slow-pictures>:"
        "<step>:<rank>";
    const std::string v(loss);
    const auto a = v.find(':'), b = v.rfind(':');
    if (a == std::string::npos || a == b) bad("AGAVE_FAULT", v, form);
    const std::string kind = v.substr(0, a);
    if (kind == "nan") {
      f->kind = LossFault::kNan;
    } else if (kind == "exit") {
      f->kind = LossFault::kExit;
    } else if (kind == "throw") {
      f->kind = LossFault::kThrow;
    } else if (kind == "stop") {
      f->kind = LossFault::kStop;
    } else if (kind == "sigstop") {
      f->kind = LossFault::kSigstop;
    } else if (kind == "sigstop-eval") {
      f->kind = LossFault::kSigstopEval;
    } else if (kind == "stop-eval") {
      f->kind = LossFault::kStopEval;
    } else if (kind == "sigstop-pictures") {
      f->kind = LossFault::kSigstopPictures;
    } else if (kind == "slow-pictures") {
      f->kind = LossFault::kSlowPictures;
    } else {
      bad("AGAVE_FAULT", v, form);
    }
    f->step = number("AGAVE_FAULT", v, v.substr(a + 1, b - a - 1), form);
    f->rank = static_cast<int>(number("AGAVE_FAULT", v, v.substr(b + 1), form));
  }
  if (ckpt != nullptr) {
    constexpr const char* form = "kill-after-shards:<step>";
    const std::string v(ckpt), prefix = "kill-after-shards:";
    if (v.rfind(prefix, 0) != 0) bad("AGAVE_FAULT_CHECKPOINT", v, form);
    f->kill_after_shards_step = number("AGAVE_FAULT_CHECKPOINT", v, v.substr(prefix.size()), form);
  }
  return f;
}

}  // namespace agave::trainer
