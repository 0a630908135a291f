#pragma once
// A data source that is not there, found before MPI starts: one line that says how to get it.
#include <string>

#include "data/options.h"

namespace agave::launcher {

// Throws ConfigError (one line: the config file, data.source, the path, and both ways to get
// the data: `agave_data fetch` or `--set data.source=`) when the shards in `data.shards` are not
// ready and `data.source` is missing or a folder holding none of the data set's files. Ready
// shards need no source, so a user who converted once may delete it.
void require_data_source(const data::DataOptions& data, const std::string& config_file);

}  // namespace agave::launcher
