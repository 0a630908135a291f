#pragma once
// One run, one folder: every sweep point writes (results, checkpoints) where no other point
// does, and never outside run.output_dir.
#include <string>
#include <vector>

#include "launcher/config.h"

namespace agave::launcher {

// Throws ConfigError (one line, naming `file` and both points) when run.name is not a plain
// folder name (empty, '.', '..', or holding '/'), a sweep value is empty, or two points would
// write to the same folder (a value listed twice, or values that differ only in characters a
// folder name replaces by '_'). Then gives every sweep point its own checkpoint folder: an
// explicit checkpoint.dir becomes <checkpoint.dir>/<point name>.
void assign_run_folders(std::vector<RunSpec>& runs, const std::string& file);

}  // namespace agave::launcher
