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

// The user's data is malformed or hostile (a field out of bounds, sizes that disagree with each
// other or with the file, a checksum that does not match): executables exit with code 2 for it,
// as for a bad config, since the fix is the user's; other DataErrors (I/O failures, missing
// files) keep exit code 1.
class BadDataError : public DataError {
 public:
  using DataError::DataError;
};

// The file is readable but its content does not match the checksum recorded for it.
class ChecksumError : public BadDataError {
 public:
  using BadDataError::BadDataError;
};

// A download (agave_data fetch) failed: no network, HTTP error, or wrong MD5.
class FetchError : public DataError {
 public:
  using DataError::DataError;
};

}  // namespace agave::data
