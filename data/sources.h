#pragma once
// Readers of the raw sources: CIFAR-10's binary version (six *.bin batches, in a folder or in
// cifar-10-binary.tar.gz) and IDX files (Fashion-MNIST, gzipped or not). Each yields one split's
// images in source order, planar C×H×W uint8, with their labels.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/options.h"

namespace agave::data {

class SplitSource {
 public:
  virtual ~SplitSource() = default;
  virtual std::string split() const = 0;
  virtual int64_t count() const = 0;
  virtual ImageShape shape() const = 0;
  // The source files, for the shards' `source` attribute and for error messages.
  virtual std::string description() const = 0;
  // Reads up to n images and labels; returns how many (0 once all count() are read). A source
  // that ends early or holds bad records throws io::DataError naming the file.
  virtual int64_t read(uint8_t* images, uint8_t* labels, int64_t n) = 0;
};

inline constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;
// A CIFAR-10 binary batch: 10000 records, 30,730,000 bytes; the most any member or file of a
// CIFAR-10 source may hold.
inline constexpr uint64_t kCifarBatchBytes = 10000 * kCifarRecordBytes;
inline constexpr const char* kCifarTarName = "cifar-10-binary.tar.gz";

// Splits of a source, "train" then "test". Sizes, magic numbers and the presence of every file
// are checked here, before anything is written.
std::vector<std::unique_ptr<SplitSource>> open_source(Dataset dataset, const std::string& path);

// Guesses the data set of a source path from the files it holds.
std::optional<Dataset> detect_dataset(const std::string& path);

// Reads the members of a tar or tar.gz archive whose file name (without folders) is in `names`.
// Returns (name, bytes) in archive order. Throws io::BadDataError on a corrupt or truncated
// archive, or a wanted member larger than `max_member_bytes`; memory grows only with the bytes the
// archive really holds, whatever its headers claim.
std::vector<std::pair<std::string, std::vector<uint8_t>>> read_tar_members(
    const std::string& path, const std::vector<std::string>& names, uint64_t max_member_bytes);

}  // namespace agave::data
