#pragma once
// Typed options of the data pipeline (YAML section `data`); no YAML, no model here.
#include <cstdint>
#include <optional>
#include <string>

namespace agave::data {

enum class Dataset { kFashionMnist, kCifar10 };

struct ImageShape {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// The shape every image of a data set has.
inline ImageShape image_shape(Dataset d) {
  return d == Dataset::kCifar10 ? ImageShape{3, 32, 32} : ImageShape{1, 28, 28};
}

// Every data set, in the order error messages list their names.
inline constexpr Dataset kDatasets[] = {Dataset::kFashionMnist, Dataset::kCifar10};

// The one name of a data set: what data.dataset, agave_data's --dataset and shard manifests use.
inline const char* dataset_name(Dataset d) {
  return d == Dataset::kCifar10 ? "cifar10" : "fashion_mnist";
}

// The inverse of dataset_name; nullopt for any other name (dataset_names() lists the allowed).
inline std::optional<Dataset> parse_dataset(const std::string& name) {
  for (Dataset d : kDatasets) {
    if (name == dataset_name(d)) return d;
  }
  return std::nullopt;
}

// "fashion_mnist, cifar10"
inline std::string dataset_names() {
  std::string out;
  for (Dataset d : kDatasets) out += (out.empty() ? "" : ", ") + std::string(dataset_name(d));
  return out;
}

struct DataOptions {
  Dataset dataset = Dataset::kFashionMnist;
  // Raw source files (IDX for Fashion-MNIST, the binary batches for CIFAR-10); converted to
  // HDF5 shards under `shards` on first use.
  std::string source = "/usr/share/datasets/fashion-mnist";
  std::string shards = "data-cache/fashion_mnist";
  int64_t images_per_shard = 10000;
  int64_t prefetch_batches = 4;
  bool shuffle = true;
  // gzip level of newly converted shards (0: stored raw, the fastest to stream).
  int compression = 0;
  // The training loader verifies each shard's SHA-256 the first time a rank maps it
  // (LoaderOptions::verify_checksums).
  bool verify_checksums = true;
};

// How one rank streams one split (see data/loader.h and docs/data-format.md).
struct LoaderOptions {
  int64_t batch_size = 64;  // per rank
  int64_t rank = 0;
  int64_t world = 1;
  uint64_t seed = 0;
  // The background thread reads the next shuffle window while fewer than this many batches are
  // queued, so up to this many plus one window's batches wait.
  int64_t prefetch = 4;
  bool shuffle = true;
  // true: every rank yields the same number of full batches (what lock-step training needs);
  // false: every image exactly once per epoch, the last batch of a rank may be short.
  bool drop_last = true;
  // Images mixed together by the shuffle: whole chunks are drawn in random order and shuffled
  // within windows of about this many images.
  int64_t shuffle_window = 4096;
  bool pin_memory = true;  // page-locked batches when CUDA is available
  // Hash every shard's content (SHA-256 of its images and labels) once per process, on the
  // background thread, and stop with a io::ChecksumError naming the shard when it differs from the
  // manifest. Off only for data sets too large to hash (docs/data-format.md has the cost).
  bool verify_checksums = true;
};

}  // namespace agave::data
