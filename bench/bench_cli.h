#pragma once
// What the benches' command lines share.
#include <CLI/CLI.hpp>

#include <string>

namespace agave::bench {

// A count (threads, steps, images) that must be positive, its default shown by --help.
template <typename T>
CLI::Option* add_count(CLI::App& app, const std::string& name, T& value, const std::string& help) {
  return app.add_option(name, value, help)->check(CLI::PositiveNumber)->capture_default_str();
}

}  // namespace agave::bench
