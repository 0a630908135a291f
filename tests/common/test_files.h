#pragma once
// Temporary folders and files for tests; removed when the object goes out of scope.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace agave::testing {

class TempDir {
 public:
  // mkdtemp: a fresh folder of this process's own, never one another test made.
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "agave_test_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// The inputs of fuzz/hdf5-known/ on which libhdf5 itself crashes, loops or allocates without
// bound (not the leak input, which ends normally).
inline std::vector<std::filesystem::path> inputs_that_break_libhdf5() {
  std::vector<std::filesystem::path> inputs;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(AGAVE_SOURCE_DIR) + "/fuzz/hdf5-known")) {
    const std::string name = e.path().filename().string();
    for (const char* kind : {"crash-", "oom-", "timeout-"}) {
      if (name.rfind(kind, 0) == 0) inputs.push_back(e.path());
    }
  }
  return inputs;
}

}  // namespace agave::testing
