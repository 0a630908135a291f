#pragma once
// What changed between two resolved configs (YAML text, as to_yaml_string writes them and
// checkpoint manifests keep them): the report a resume prints. Whether a change is allowed is
// decided elsewhere (trainer::model_signature); this only lists the changes.
#include <string>
#include <vector>

namespace agave::launcher {

// One entry per changed key, in the order of `after`, then keys only `before` had:
//   "loss.lambda 2 → 1"                   a value changed
//   "eval.every (none) → 100"             a key only one side has
//   "train.phases +no_aux", "... -joint"  an element of a list of {name, ...} added or removed
//   "train.phases.joint.steps 250 → 300"  a field of a named element changed
// Throws ConfigError when either text is not YAML.
std::vector<std::string> config_changes(const std::string& before, const std::string& after);

// The changes joined by ", " ("" when none); a `before` that is not YAML gives one line saying
// so instead of an exception, since the report must not stop a resume.
std::string describe_config_changes(const std::string& before, const std::string& after);

}  // namespace agave::launcher
