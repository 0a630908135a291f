#pragma once
// Errors of the data pipeline. Every message names the file and what is wrong with it, so the
// CLI can print it as one line and a trainer log says which shard to look at.
#include <stdexcept>
#include <string>

namespace agave::data {

class DataError : public std::runtime_error {
 public:
  DataError(const std::string& path, const std::string& problem)
      : std::runtime_error(path.empty() ? problem : path + ": " + problem),
        path_(path),
        problem_(problem) {}
  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

// The file is readable but its content does not match the checksum recorded for it.
class ChecksumError : public DataError {
 public:
  using DataError::DataError;
};

// A download (agave_data fetch) failed: no network, HTTP error, or wrong MD5.
class FetchError : public DataError {
 public:
  using DataError::DataError;
};

}  // namespace agave::data
