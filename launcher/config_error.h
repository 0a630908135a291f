#pragma once
#include <stdexcept>
#include <string>

namespace agave::launcher {

// A configuration the user must fix: bad YAML, unknown key, wrong type or impossible value.
// The message is one line naming where (file:line or the --set override), the key and what is
// allowed. Executables exit with ExitCode::kUserError for it (launcher/exit_code.h), before
// writing any output.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A ConfigError that only this rank meets (its own metrics port): printed by the rank that
// finds it, where an ordinary ConfigError, alike on every rank, is printed by rank 0 alone.
class RankConfigError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

}  // namespace agave::launcher
