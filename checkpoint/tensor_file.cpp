#include "checkpoint/tensor_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "hdf5/checked.h"
#include "hdf5/datasets.h"
#include "hdf5/header_probe.h"

namespace agave::checkpoint {
namespace {

hid_t h5_type(torch::ScalarType t, const std::string& path, const std::string& name) {
  switch (t) {
    case torch::kFloat32:
      return H5T_IEEE_F32LE;
    case torch::kFloat64:
      return H5T_IEEE_F64LE;
    case torch::kInt64:
      return H5T_STD_I64LE;
    case torch::kUInt8:
      return H5T_STD_U8LE;
    default:
      throw std::runtime_error(path + ": tensor " + name + " has dtype " +
                               std::string(c10::toString(t)) + ", which checkpoints do not store");
  }
}

torch::ScalarType torch_type(hid_t type, const std::string& what) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT && size == 4) return torch::kFloat32;
  if (cls == H5T_FLOAT && size == 8) return torch::kFloat64;
  if (cls == H5T_INTEGER && size == 8) return torch::kInt64;
  if (cls == H5T_INTEGER && size == 1) return torch::kUInt8;
  throw std::runtime_error(what + ": unsupported stored dtype");
}

// Creates the groups on the way to `name` ("a/b/c" needs "a" and "a/b").
void make_parents(hid_t file, const std::string& name, const std::string& path) {
  for (size_t p = name.find('/'); p != std::string::npos; p = name.find('/', p + 1)) {
    const std::string group = name.substr(0, p);
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) > 0) continue;
    hdf5::Handle g(
        hdf5::check_id(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path,
                       "cannot create group " + group),
        H5Gclose);
  }
}

}  // namespace

void write_tensor_file(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, int64_t>& attributes) {
  using hdf5::check_id;
  using hdf5::check_status;
  using hdf5::Handle;
  hdf5::QuietErrors quiet;
  {
    Handle file(check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), path,
                         "cannot create checkpoint shard"),
                H5Fclose);
    for (const auto& [name, tensor] : tensors) {
      const auto t = tensor.detach().to(torch::kCPU).contiguous();
      const hid_t type = h5_type(t.scalar_type(), path, name);
      std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
      Handle space(t.dim() == 0
                       ? H5Screate(H5S_SCALAR)
                       : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                   H5Sclose);
      make_parents(file.get(), name, path);
      Handle ds(check_id(H5Dcreate2(file.get(), name.c_str(), type, space.get(), H5P_DEFAULT,
                                    H5P_DEFAULT, H5P_DEFAULT),
                         path, "cannot create dataset " + name),
                H5Dclose);
      check_status(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), path,
                   "cannot write " + name);
    }
    for (const auto& [name, value] : attributes) {
      hdf5::write_int_attr(file.get(), name.c_str(), {value}, path);
    }
    check_status(file.close(), path, "cannot close checkpoint shard");
  }
  // The manifest that makes this shard part of a checkpoint comes later; the bytes must be on
  // disk before it.
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(path + ": cannot fsync checkpoint shard");
  }
  ::close(fd);
}

namespace {

// A checkpoint shard may come from another machine: its headers are read first in a separate
// process (a crafted one can crash libhdf5), then opened here.
hdf5::Handle open_probed(const std::string& path) {
  hdf5::probe_dataset_headers(path);
  return hdf5::open_file_readonly(path);
}

}  // namespace

TensorFileReader::TensorFileReader(const std::string& path)
    : path_(path), file_(open_probed(path)), file_bytes_(std::filesystem::file_size(path)) {}

bool TensorFileReader::contains(const std::string& name) const {
  hdf5::QuietErrors quiet;
  // Every parent group must exist before H5Lexists may be asked about the child.
  for (size_t p = name.find('/'); p != std::string::npos; p = name.find('/', p + 1)) {
    if (H5Lexists(file_.get(), name.substr(0, p).c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return H5Lexists(file_.get(), name.c_str(), H5P_DEFAULT) > 0;
}

torch::Tensor TensorFileReader::read(const std::string& name) const {
  using hdf5::Handle;
  hdf5::QuietErrors quiet;
  const std::string what = path_ + ": tensor " + name;
  if (!contains(name)) throw std::runtime_error(what + " is missing");
  Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) throw std::runtime_error(what + ": cannot open");
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  // Sizes come from the file: nothing is allocated before they are checked against it.
  const auto header = hdf5::dataset_header(ds.get(), name);
  const std::string problem = hdf5::contiguous_storage_problem(header, file_bytes_);
  if (!problem.empty()) throw std::runtime_error(path_ + ": " + problem);
  const auto dtype = torch_type(type.get(), what);
  auto t = torch::empty(std::vector<int64_t>(header.dims.begin(), header.dims.end()), dtype);
  if (H5Dread(ds.get(), h5_type(dtype, path_, name), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) <
      0) {
    throw std::runtime_error(what + ": cannot read (" + hdf5::last_error() + ")");
  }
  return t;
}

void TensorFileReader::read_into(const std::string& name, torch::Tensor into) const {
  const auto t = read(name);
  if (t.sizes() != into.sizes() || t.scalar_type() != into.scalar_type()) {
    std::ostringstream s;
    s << path_ << ": tensor " << name << " is stored as " << t.sizes() << " "
      << c10::toString(t.scalar_type()) << " but the model has " << into.sizes() << " "
      << c10::toString(into.scalar_type());
    throw std::runtime_error(s.str());
  }
  torch::NoGradGuard no_grad;
  into.copy_(t);
}

int64_t TensorFileReader::attribute(const std::string& name) const {
  hdf5::Handle attr(H5Aopen(file_.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr.valid()) throw std::runtime_error(path_ + ": attribute " + name + " is missing");
  int64_t v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0) {
    throw std::runtime_error(path_ + ": cannot read attribute " + name);
  }
  return v;
}

}  // namespace agave::checkpoint
