#pragma once
// Helpers shared by the data tests: synthetic shard sets whose pixels
// encode each image's index, so a test can check any image it is handed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/errors.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "tests/common/cifar10.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/test_files.h"

namespace agave::data::test {

namespace fs = std::filesystem;

using TempDir = ::agave::testing::TempDir;

inline std::string cifar_dir() { return ::agave::testing::cifar10_source(); }
inline bool have_cifar() { return fs::exists(cifar_dir() + "/data_batch_1.bin"); }
#define AGAVE_REQUIRE_CIFAR()                                                                 \
  if (!::agave::data::test::have_cifar())                                                     \
  GTEST_SKIP() << "CIFAR-10 binary batches not found at " << ::agave::data::test::cifar_dir() \
               << " (set AGAVE_CIFAR10 to a folder of them)"

inline constexpr const char* kFashionMnist = ::agave::testing::kFashionMnistSource;

// The message of the io::DataError `fn` throws; "" and a test failure when it throws none.
template <typename Fn>
std::string data_error_of(Fn fn) {
  try {
    fn();
  } catch (const io::DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no io::DataError";
  return "";
}

// Pixel k of image g: a value no other image shares at every position.
inline uint8_t pixel(int64_t g, int64_t k) {
  return static_cast<uint8_t>((g * 131 + k * 7 + (g >> 8) * 17) & 0xff);
}
inline uint8_t label_of(int64_t g) { return static_cast<uint8_t>(g % 10); }

// Writes a split of `counts` images per shard (shape c×h×w) with a manifest into `dir`.
inline Manifest write_synthetic_split(const std::string& dir, const std::string& split,
                                      const std::vector<int64_t>& counts, ImageShape shape,
                                      int64_t chunk_images, int compression = 0) {
  Manifest m;
  m.path = manifest_path(dir, split);
  m.dataset = "synthetic";
  m.split = split;
  m.source = "test";
  m.shape = shape;
  const int64_t bytes = shape.channels * shape.height * shape.width;
  int64_t first = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    const std::string name = split + "-" + std::to_string(s) + ".h5";
    ShardWriteOptions w;
    w.dataset = m.dataset;
    w.source = "test";
    w.split = split;
    w.shape = shape;
    w.count = counts[s];
    w.first_index = first;
    w.chunk_images = chunk_images;
    w.compression = compression;
    ShardWriter writer((fs::path(dir) / name).string(), w);
    std::vector<uint8_t> img(static_cast<size_t>(counts[s] * bytes)), lab(counts[s]);
    for (int64_t i = 0; i < counts[s]; ++i) {
      for (int64_t k = 0; k < bytes; ++k) img[i * bytes + k] = pixel(first + i, k);
      lab[i] = label_of(first + i);
    }
    // Uneven appends exercise the writer's chunk buffering.
    int64_t done = 0;
    for (int64_t step = 1; done < counts[s]; step = step * 3 + 1) {
      const int64_t n = std::min(step, counts[s] - done);
      writer.append(img.data() + done * bytes, lab.data() + done, n);
      done += n;
    }
    const ShardInfo info = writer.finish();
    m.shards.push_back({name, counts[s], first, info.sha256});
    first += counts[s];
  }
  m.count = first;
  write_manifest(m.path, m);
  return m;
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}
inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// Runs a shell command; returns its exit status and (stdout+stderr) output.
inline int run_command(const std::string& cmd, std::string* output = nullptr) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  std::string out;
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (output != nullptr) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline bool have_h5py() { return run_command("/usr/bin/python3 -c 'import h5py, numpy'") == 0; }

}  // namespace agave::data::test
