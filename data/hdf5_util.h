#pragma once
// Thin RAII and error-reporting helpers over the HDF5 C API, private to data/.
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agave::data::h5 {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = H5I_INVALID_HID;
  }
  // Closes now and reports failure (a file's close is where buffered writes can fail).
  herr_t close() {
    herr_t rc = 0;
    if (id_ >= 0 && closer_ != nullptr) rc = closer_(id_);
    id_ = H5I_INVALID_HID;
    return rc;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Turns HDF5's automatic error printing off while alive: our exceptions carry the message, and
// HDF5's multi-line stack dumps on stderr would bury the one clear line we promise.
class QuietErrors {
 public:
  QuietErrors();
  ~QuietErrors();
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The innermost message on HDF5's error stack (e.g. "truncated file: eof = ..."), or "".
std::string last_error();

// Throw DataError(path, what + HDF5's reason) when an id is invalid or a status is negative.
hid_t check_id(hid_t id, const std::string& path, const std::string& what);
void check_status(herr_t status, const std::string& path, const std::string& what);

Handle open_file_readonly(const std::string& path);
Handle open_dataset(hid_t file, const char* name, const std::string& path);

void write_string_attr(hid_t obj, const char* name, const std::string& value,
                       const std::string& path);
void write_int_attr(hid_t obj, const char* name, const std::vector<int64_t>& values,
                    const std::string& path);
// Absent attribute: nullopt. Present with another type or rank: DataError.
std::optional<std::string> read_string_attr(hid_t obj, const char* name, const std::string& path);
std::optional<std::vector<int64_t>> read_int_attr(hid_t obj, const char* name,
                                                  const std::string& path);

std::vector<hsize_t> dataset_dims(hid_t dset, const std::string& path, const char* name);

}  // namespace agave::data::h5
