#pragma once
// Runs our executables as users do: a shell command, its exit code and its output; and the
// mpirun prefix that works as root and on a 2-core machine.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

namespace agave::testing {

struct Result {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Our executables in the build tree (every test binary is compiled with AGAVE_BIN_DIR).
inline const std::string kTrainer = std::string(AGAVE_BIN_DIR) + "/agave_trainer";
inline const std::string kEval = std::string(AGAVE_BIN_DIR) + "/agave_eval";

inline Result sh(const std::string& command) {
  Result r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string mpirun(int np) {
  std::string cmd = "mpirun --oversubscribe";
  if (geteuid() == 0) cmd += " --allow-run-as-root";
  return cmd + " -np " + std::to_string(np) + " ";
}

inline size_t count_of(const std::string& text, const std::string& piece) {
  size_t n = 0;
  for (size_t p = text.find(piece); p != std::string::npos; p = text.find(piece, p + 1)) ++n;
  return n;
}

}  // namespace agave::testing
