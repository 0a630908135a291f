#pragma once
// 8-bit PNG files through libpng: sample and reconstruction grids, sweep plots.
#include <cstdint>
#include <string>
#include <vector>

namespace agave::monitoring {

// An 8-bit image, rows of width·channels bytes (channels 1 = gray, 3 = RGB), top row first.
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;
};

// Writes `image` to `path` via a temporary file renamed on success; throws naming the path.
void write_png(const std::string& path, const Image& image);
// Reads an 8-bit gray or RGB PNG (for tests and tools); throws naming the path.
Image read_png(const std::string& path);

}  // namespace agave::monitoring
