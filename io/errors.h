#pragma once
// Errors about bytes read from files (image shards, manifests, archives, checkpoint shards). Every
// message names the file and what is wrong with it, so a CLI prints it as one line and a log
// says which file to look at. Below every folder that reads files (data/, checkpoint/, hdf5/).
#include <stdexcept>
#include <string>

namespace agave::io {

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

}  // namespace agave::io
