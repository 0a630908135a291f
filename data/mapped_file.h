#pragma once
// A file opened read-only and mapped whole into memory: the loader reads shard chunks straight
// from the mapping. Owns the descriptor and the mapping; both go with the object.
#include <cstddef>
#include <cstdint>
#include <string>

namespace agave::data {

class MappedFile {
 public:
  MappedFile() = default;
  // Opens `path`; throws io::DataError naming it when it cannot be opened or is empty. A mapping
  // that fails leaves data() null (callers read through HDF5 instead).
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  int fd() const { return fd_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void release();

  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace agave::data
