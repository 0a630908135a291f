#pragma once
// Named tensors in one HDF5 file: one dataset per tensor at its name (groups from '/'), with
// its real shape and dtype, so h5py users read f["model"]["pixelcnn.out.v"] directly.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hdf5/handle.h"

namespace agave::checkpoint {

// Writes `tensors` (float32, float64, int64 or uint8; any layout) and integer attributes to
// `path`, then fsyncs it. Throws naming the file.
void write_tensor_file(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, int64_t>& attributes);

// Reads one file's tensors by name; errors name the file and the tensor.
class TensorFileReader {
 public:
  // Opens once, after agave_h5probe read every header (hdf5/header_probe.h); a missing,
  // truncated, non-HDF5 or crafted file is an error naming it.
  explicit TensorFileReader(const std::string& path);
  TensorFileReader(const TensorFileReader&) = delete;
  TensorFileReader& operator=(const TensorFileReader&) = delete;

  bool contains(const std::string& name) const;
  // A new contiguous CPU tensor with the stored shape and dtype.
  torch::Tensor read(const std::string& name) const;
  // Copies into `into` after checking shape and dtype.
  void read_into(const std::string& name, torch::Tensor into) const;
  int64_t attribute(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  hdf5::Handle file_;
  uint64_t file_bytes_ = 0;  // every dataset's values must lie inside
};

}  // namespace agave::checkpoint
