#pragma once
// Typed options of the data pipeline (YAML section `data`); no YAML, no model here.
#include <cstdint>
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

inline const char* dataset_name(Dataset d) {
  return d == Dataset::kCifar10 ? "cifar10" : "fashion_mnist";
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
};

}  // namespace agave::data
