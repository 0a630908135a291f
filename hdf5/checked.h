#pragma once
// Checked helpers over the HDF5 C API for the files agave writes (data shards, checkpoint
// shards): every failure is an io::DataError naming the file and HDF5's reason.
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hdf5/handle.h"

namespace agave::hdf5 {

// Throw io::DataError(path, what + HDF5's reason) when an id is invalid or a status is negative.
hid_t check_id(hid_t id, const std::string& path, const std::string& what);
void check_status(herr_t status, const std::string& path, const std::string& what);

Handle open_file_readonly(const std::string& path);
Handle open_dataset(hid_t file, const char* name, const std::string& path);

void write_string_attr(hid_t obj, const char* name, const std::string& value,
                       const std::string& path);
void write_int_attr(hid_t obj, const char* name, const std::vector<int64_t>& values,
                    const std::string& path);
// Absent attribute: nullopt. Present with another type or rank: io::DataError.
std::optional<std::string> read_string_attr(hid_t obj, const char* name, const std::string& path);
std::optional<std::vector<int64_t>> read_int_attr(hid_t obj, const char* name,
                                                  const std::string& path);

std::vector<hsize_t> dataset_dims(hid_t dset, const std::string& path, const char* name);

}  // namespace agave::hdf5
