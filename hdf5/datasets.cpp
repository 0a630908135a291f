#include "hdf5/datasets.h"

#include <limits>
#include <stdexcept>

#include "hdf5/handle.h"

namespace agave::hdf5 {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) {
    const std::string reason = last_error();
    throw std::runtime_error(what + (reason.empty() ? "" : " (" + reason + ")"));
  }
}

// Reads every attribute header of the object `obj`.
void read_attribute_headers(hid_t obj, const std::string& where) {
  H5O_info_t info;
  check(H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) >= 0, where + ": cannot read its header");
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    Handle attr(H5Aopen_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
    check(attr.valid(), where + ": cannot open attribute " + std::to_string(i));
    Handle type(H5Aget_type(attr.get()), H5Tclose);
    Handle space(H5Aget_space(attr.get()), H5Sclose);
    check(type.valid() && space.valid(),
          where + ": cannot read the type of attribute " + std::to_string(i));
  }
}

struct Walk {
  std::string path;
  std::vector<DatasetHeader> datasets;
  std::string failure;
};

herr_t visit_object(hid_t root, const char* name, const H5O_info_t* info, void* data) {
  auto& walk = *static_cast<Walk*>(data);
  const std::string where = walk.path + ": object " + name;
  try {
    Handle obj(H5Oopen(root, name, H5P_DEFAULT), H5Oclose);
    check(obj.valid(), where + ": cannot open");
    read_attribute_headers(obj.get(), where);
    if (info->type == H5O_TYPE_DATASET) walk.datasets.push_back(dataset_header(obj.get(), name));
  } catch (const std::exception& e) {
    walk.failure = e.what();
    return -1;
  }
  return 0;
}

}  // namespace

DatasetHeader dataset_header(hid_t ds, const std::string& name) {
  DatasetHeader h;
  h.name = name;
  Handle space(H5Dget_space(ds), H5Sclose);
  check(space.valid(), "dataset " + name + ": cannot read its dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  check(rank >= 0 && rank <= H5S_MAX_RANK, "dataset " + name + ": cannot read its dimensions");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) {
    check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) == rank,
          "dataset " + name + ": cannot read its dimensions");
  }
  h.dims.assign(dims.begin(), dims.end());
  Handle type(H5Dget_type(ds), H5Tclose);
  check(type.valid(), "dataset " + name + ": cannot read its datatype");
  h.type_class = H5Tget_class(type.get());
  h.type_size = H5Tget_size(type.get());
  Handle plist(H5Dget_create_plist(ds), H5Pclose);
  check(plist.valid(), "dataset " + name + ": cannot read its creation properties");
  h.layout = H5Pget_layout(plist.get());
  h.filters = H5Pget_nfilters(plist.get());
  h.storage_bytes = H5Dget_storage_size(ds);
  h.offset = H5Dget_offset(ds);
  return h;
}

std::vector<DatasetHeader> read_dataset_headers(const std::string& path) {
  QuietErrors quiet;
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  check(file.valid(), path + ": cannot open as HDF5 (truncated or corrupt?)");
  Walk walk{path, {}, ""};
  const herr_t rc =
      H5Ovisit2(file.get(), H5_INDEX_NAME, H5_ITER_INC, visit_object, &walk, H5O_INFO_BASIC);
  if (!walk.failure.empty()) throw std::runtime_error(walk.failure);
  check(rc >= 0, path + ": cannot walk its objects");
  return walk.datasets;
}

std::string contiguous_storage_problem(const DatasetHeader& h, uint64_t file_bytes) {
  const std::string what = "dataset " + h.name + ": ";
  uint64_t count = 1;
  for (uint64_t d : h.dims) {
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / d) {
      return what + "its dimensions overflow a 64-bit element count";
    }
    count *= d;
  }
  if (h.type_size == 0 ||
      (count != 0 && count > std::numeric_limits<uint64_t>::max() / h.type_size)) {
    return what + "its size overflows 64 bits";
  }
  const uint64_t bytes = count * h.type_size;
  if (h.layout != H5D_CONTIGUOUS && !(h.layout == H5D_COMPACT && bytes <= 65536)) {
    return what + "is not stored contiguously (agave writes no chunked datasets)";
  }
  if (h.filters != 0) return what + "has filters (agave writes no compressed datasets)";
  if (h.storage_bytes != bytes) {
    return what + "has " + std::to_string(h.storage_bytes) + " bytes stored for " +
           std::to_string(bytes) + " bytes of values";
  }
  if (h.layout == H5D_CONTIGUOUS && bytes > 0 &&
      (h.offset == HADDR_UNDEF || h.offset > file_bytes || bytes > file_bytes - h.offset)) {
    return what + "its values lie outside the file (" + std::to_string(file_bytes) + " bytes)";
  }
  return "";
}

}  // namespace agave::hdf5
