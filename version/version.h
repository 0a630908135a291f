#pragma once
// What this build is: the project version (CMake's project()), the git commit it was built
// from ("unknown" outside a git checkout) and the LibTorch and CUDA versions it links. One place
// for --version, summary.json, checkpoint manifests, the trainer's start-up line and the
// agave_build_info metric.
#include <nlohmann/json.hpp>
#include <string>

namespace agave::version {

struct BuildInfo {
  std::string version;  // "0.1.0"
  std::string commit;   // short hash, or "unknown"
  std::string torch;    // LibTorch version, "1.13.0"
  std::string cuda;     // CUDA version LibTorch was built with, or "none"
};

const BuildInfo& build_info();

// "agave_trainer 0.1.0 (commit abc1234, LibTorch 1.13.0)", with ", CUDA 12.4" on CUDA builds.
std::string describe(const std::string& program);

// {"version", "commit", "torch", "cuda"}: what summary.json and checkpoint manifests record
// under "agave".
nlohmann::json to_json(const BuildInfo& b);

}  // namespace agave::version
