#pragma once
// What changed between two resolved configs (YAML text, as to_yaml_string writes them and
// checkpoint manifests and <run>/config.yaml keep them): the report a resume prints, and which
// of the changes alter what the run has already trained (trainer::ConfigDrift). A model that no
// longer fits the checkpoint is refused elsewhere (checkpoint::model_signature).
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/config_history.h"

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

// The changes from `recorded` (the run's config.yaml, or its checkpoint's) to `current` for a run
// that resumes at `step`, split into those that change the result of the steps the run has
// trained or the meaning of the rest (the seed, the data set and its order, the model, the aux
// image, the loss, the batch, the optimizer, precision, EMA, clipping, the pretraining schedule,
// and any phase setting that applied before `step`) and the others (evaluation, checkpoints,
// monitoring, cluster, paths, phases still to come, more steps). Throws ConfigError when
// either text is not YAML.
trainer::ConfigDrift config_drift(const std::string& recorded, const std::string& current,
                                  int64_t step);

}  // namespace agave::launcher
