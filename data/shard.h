#pragma once
// One HDF5 image shard: dataset `images` (uint8, N×C×H×W, chunked in groups of images) and
// `labels` (uint8, N), with attributes on the root group naming the format, data set, source,
// split, count, image shape, the shard's first index in its split and a SHA-256 of the content.
// docs/data-format.md is the reference for the layout.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/options.h"

namespace agave::data {

inline constexpr const char* kShardFormat = "agave-image-shard";
inline constexpr int64_t kShardVersion = 1;

struct ShardInfo {
  std::string path;
  std::string dataset;  // "cifar10", "fashion_mnist", ...
  std::string source;   // where the images came from (file names of the raw source)
  std::string split;    // "train" or "test"
  ImageShape shape;
  int64_t count = 0;
  int64_t first_index = 0;  // index of this shard's first image within its split
  int64_t chunk_images = 0;
  int compression = 0;  // gzip level; 0 = stored raw
  // SHA-256 of the images bytes (C order) followed by the labels bytes.
  std::string sha256;

  int64_t image_bytes() const { return shape.channels * shape.height * shape.width; }
};

// Images per HDF5 chunk: about 256 KiB, a power of two. Big enough that a chunk read costs
// little more than the bytes, small enough that a shuffle window of chunks stays random.
int64_t default_chunk_images(const ImageShape& shape);

struct ShardWriteOptions {
  std::string dataset;
  std::string source;
  std::string split;
  ImageShape shape;
  int64_t count = 0;  // images the shard will hold; fixed up front
  int64_t first_index = 0;
  int64_t chunk_images = 0;  // 0: default_chunk_images(shape)
  int compression = 0;       // gzip level 0..9
  // false: finish() leaves the complete file at `<path>.tmp`, for a caller that renames a whole
  // set of shards at once.
  bool rename_on_finish = true;
};

// Writes `<path>.tmp` and renames it to `path` only in finish(), after every byte is written
// and the file is closed: a shard file that exists is complete. Destroying an unfinished
// writer removes the temporary file.
class ShardWriter {
 public:
  ShardWriter(std::string path, ShardWriteOptions options);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // n images (n × C×H×W bytes, planar) and their n labels.
  void append(const uint8_t* images, const uint8_t* labels, int64_t n);
  int64_t written() const;
  ShardInfo finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Where one chunk's bytes lie in the shard file, so the loader's thread can read them with
// pread() and no HDF5 call.
struct ChunkLocation {
  int64_t first = 0;  // first image of the chunk within the shard
  int64_t count = 0;  // valid images (the last chunk may be partial)
  uint64_t offset = 0;
  uint64_t stored_bytes = 0;
  bool deflated = false;  // zlib stream (HDF5's deflate filter) rather than raw bytes
};

// Opens and validates a shard: HDF5 signature, format attribute, dtype and shape of both
// datasets against the attributes. Every failure is a io::DataError naming the file.
class ShardReader {
 public:
  explicit ShardReader(const std::string& path);
  ~ShardReader();
  ShardReader(ShardReader&&) noexcept;
  ShardReader& operator=(ShardReader&&) noexcept;

  const ShardInfo& info() const;
  // Images per storage block: the chunk size for chunked shards.
  int64_t block_images() const;

  void read_images(int64_t start, int64_t n, uint8_t* out) const;
  std::vector<uint8_t> read_labels() const;

  // nullopt when the storage cannot be read directly (filters other than deflate, chunks that
  // are not whole images, contiguous layout): readers then fall back to read_images().
  std::optional<std::vector<ChunkLocation>> chunk_locations() const;

  // Streams all images block by block: fn(images, first, n).
  void for_each_block(const std::function<void(const uint8_t*, int64_t, int64_t)>& fn) const;
  // Recomputes the content checksum (images then labels).
  std::string compute_sha256() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agave::data
