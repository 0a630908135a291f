#include "hdf5/checked.h"

#include <cstring>
#include <filesystem>

#include "io/errors.h"

namespace agave::hdf5 {

namespace {
std::string with_reason(const std::string& what) {
  const std::string reason = last_error();
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? what : what + " (" + reason + ")";
}
}  // namespace

hid_t check_id(hid_t id, const std::string& path, const std::string& what) {
  if (id < 0) throw io::DataError(path, with_reason(what));
  return id;
}

void check_status(herr_t status, const std::string& path, const std::string& what) {
  if (status < 0) throw io::DataError(path, with_reason(what));
}

Handle open_file_readonly(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw io::DataError(path, "no such file");
  if (std::filesystem::is_directory(path, ec))
    throw io::DataError(path, "is a directory, not a file");
  QuietErrors quiet;
  htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw io::DataError(path, "not an HDF5 file (no HDF5 signature found; truncated or corrupt?)");
  }
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  return Handle(check_id(id, path, "cannot open as HDF5 (truncated or corrupt?)"), H5Fclose);
}

Handle open_dataset(hid_t file, const char* name, const std::string& path) {
  QuietErrors quiet;
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw io::DataError(path, std::string("has no dataset '") + name + "'");
  }
  hid_t id = H5Dopen2(file, name, H5P_DEFAULT);
  return Handle(check_id(id, path, std::string("cannot open dataset '") + name + "'"), H5Dclose);
}

void write_string_attr(hid_t obj, const char* name, const std::string& value,
                       const std::string& path) {
  // Variable-length UTF-8, which h5py 3 returns as str rather than bytes.
  Handle type(check_id(H5Tcopy(H5T_C_S1), path, "H5Tcopy"), H5Tclose);
  check_status(H5Tset_size(type.get(), H5T_VARIABLE), path, "H5Tset_size");
  check_status(H5Tset_cset(type.get(), H5T_CSET_UTF8), path, "H5Tset_cset");
  Handle space(check_id(H5Screate(H5S_SCALAR), path, "H5Screate"), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       path, std::string("cannot create attribute ") + name),
              H5Aclose);
  const char* c = value.c_str();
  check_status(H5Awrite(attr.get(), type.get(), &c), path,
               std::string("cannot write attribute ") + name);
}

void write_int_attr(hid_t obj, const char* name, const std::vector<int64_t>& values,
                    const std::string& path) {
  hsize_t n = values.size();
  Handle space(check_id(n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), path,
                        "H5Screate"),
               H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       path, std::string("cannot create attribute ") + name),
              H5Aclose);
  check_status(H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()), path,
               std::string("cannot write attribute ") + name);
}

std::optional<std::string> read_string_attr(hid_t obj, const char* name, const std::string& path) {
  QuietErrors quiet;
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  const std::string what = std::string("attribute '") + name + "'";
  Handle attr(check_id(H5Aopen(obj, name, H5P_DEFAULT), path, "cannot open " + what), H5Aclose);
  Handle ftype(check_id(H5Aget_type(attr.get()), path, "cannot read " + what), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_STRING) throw io::DataError(path, what + " is not a string");
  Handle space(check_id(H5Aget_space(attr.get()), path, "cannot read " + what), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) {
    throw io::DataError(path, what + " is not a single string");
  }
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle mtype(check_id(H5Tcopy(H5T_C_S1), path, "H5Tcopy"), H5Tclose);
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    char* s = nullptr;
    check_status(H5Aread(attr.get(), mtype.get(), &s), path, "cannot read " + what);
    std::string out = s != nullptr ? s : "";
    H5free_memory(s);
    return out;
  }
  // Fixed-length strings, as other writers (h5py with np.bytes_) produce them.
  const size_t size = H5Tget_size(ftype.get());
  // The size comes from the file: bound it before allocating (our attributes are short).
  if (size == 0 || size > (size_t{1} << 20)) {
    throw io::BadDataError(path, what + " declares a string of " + std::to_string(size) +
                                     " bytes (at most 1048576 allowed)");
  }
  std::string buf(size + 1, '\0');
  check_status(H5Aread(attr.get(), ftype.get(), buf.data()), path, "cannot read " + what);
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

std::optional<std::vector<int64_t>> read_int_attr(hid_t obj, const char* name,
                                                  const std::string& path) {
  QuietErrors quiet;
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  const std::string what = std::string("attribute '") + name + "'";
  Handle attr(check_id(H5Aopen(obj, name, H5P_DEFAULT), path, "cannot open " + what), H5Aclose);
  Handle ftype(check_id(H5Aget_type(attr.get()), path, "cannot read " + what), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_INTEGER) {
    throw io::DataError(path, what + " is not an integer");
  }
  Handle space(check_id(H5Aget_space(attr.get()), path, "cannot read " + what), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 1 || n > 64) throw io::DataError(path, what + " has an unexpected size");
  std::vector<int64_t> out(static_cast<size_t>(n));
  check_status(H5Aread(attr.get(), H5T_NATIVE_INT64, out.data()), path, "cannot read " + what);
  return out;
}

std::vector<hsize_t> dataset_dims(hid_t dset, const std::string& path, const char* name) {
  const std::string what = std::string("dataset '") + name + "'";
  Handle space(check_id(H5Dget_space(dset), path, "cannot read shape of " + what), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) check_status(rank, path, "cannot read shape of " + what);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

}  // namespace agave::hdf5
