#pragma once
// What an HDF5 file says about its datasets, read without reading their values, and the check
// that a dataset's values lie, unfiltered and whole, inside the file. Used for checkpoint shards
// (checkpoint/tensor_file) in this process and, first, inside agave_h5probe, because a crafted
// object header can crash libhdf5 before any check of ours runs (hdf5/header_probe.h).
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace agave::hdf5 {

struct DatasetHeader {
  std::string name;            // full path inside the file, e.g. "model/pixelcnn.out.v"
  std::vector<uint64_t> dims;  // empty for a scalar
  H5T_class_t type_class = H5T_NO_CLASS;
  size_t type_size = 0;
  H5D_layout_t layout = H5D_LAYOUT_ERROR;
  int filters = 0;             // compression and other filters in the pipeline
  uint64_t storage_bytes = 0;  // bytes allocated in the file
  uint64_t offset = 0;         // of contiguous values; HADDR_UNDEF when none are allocated
};

// The header of the open dataset `ds` (its dataspace, datatype, layout and storage). Throws
// std::runtime_error naming `name` when libhdf5 cannot read one of them.
DatasetHeader dataset_header(hid_t ds, const std::string& name);

// Opens `path` read-only and reads the header of every group, dataset and attribute in it.
// Throws std::runtime_error naming the file and object on the first failure.
std::vector<DatasetHeader> read_dataset_headers(const std::string& path);

// Why the values of `h` cannot be read safely as one contiguous block of a file of
// `file_bytes` bytes, or "" when they can: an element count that overflows, a layout other
// than contiguous, filters, allocated bytes other than count × element size, or an extent
// outside the file.
std::string contiguous_storage_problem(const DatasetHeader& h, uint64_t file_bytes);

}  // namespace agave::hdf5
