#include "version/version.h"

namespace agave::version {

const BuildInfo& build_info() {
  static const BuildInfo info{AGAVE_VERSION, AGAVE_GIT_COMMIT, AGAVE_TORCH_VERSION,
                              AGAVE_CUDA_VERSION};
  return info;
}

std::string describe(const std::string& program) {
  const auto& b = build_info();
  std::string s = program + " " + b.version + " (commit " + b.commit + ", LibTorch " + b.torch;
  if (b.cuda != "none") s += ", CUDA " + b.cuda;
  return s + ")";
}

nlohmann::json to_json(const BuildInfo& b) {
  return {{"version", b.version}, {"commit", b.commit}, {"torch", b.torch}, {"cuda", b.cuda}};
}

}  // namespace agave::version
