#include "launcher/data_source.h"

#include <filesystem>

#include "data/convert.h"
#include "data/sources.h"
#include "launcher/config_error.h"

namespace agave::launcher {

namespace {

namespace fs = std::filesystem;

// Where `agave_data fetch cifar10 --output DIR` must write so that `source` finds the archive:
// the folder itself, or the archive's folder when the source names cifar-10-binary.tar.gz.
std::string fetch_folder(const std::string& source) {
  const fs::path p(source);
  if (p.filename() != data::kCifarTarName) return source;
  return p.has_parent_path() ? p.parent_path().string() : ".";
}

}  // namespace

void require_data_source(const data::DataOptions& d, const std::string& config_file) {
  if (data::shards_ready(d.shards, d.dataset)) return;
  std::error_code ec;
  // A file is left to the reader (an archive under any name); a folder must hold the data.
  const bool missing = !fs::exists(d.source, ec) ||
                       (fs::is_directory(d.source, ec) && !data::detect_dataset(d.source));
  if (!missing) return;
  const std::string where = config_file + ": data.source: '" + d.source + "'";
  if (d.dataset == data::Dataset::kCifar10) {
    throw ConfigError(where + " holds no CIFAR-10 (and data.shards '" + d.shards +
                      "' has no shards yet); get it with `agave_data fetch cifar10 --output " +
                      fetch_folder(d.source) +
                      "` or give a folder of its binary batches or cifar-10-binary.tar.gz with "
                      "--set data.source=DIR_OR_ARCHIVE");
  }
  throw ConfigError(where + " holds no Fashion-MNIST (and data.shards '" + d.shards +
                    "' has no shards yet); install Debian's dataset-fashion-mnist (apt-get "
                    "install dataset-fashion-mnist) or give a folder of its IDX files with "
                    "--set data.source=DIR");
}

}  // namespace agave::launcher
