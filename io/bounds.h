#pragma once
// Overflow-safe checks for every size, offset, count and dimension read from a file (shards,
// manifests, archives, IDX headers, checkpoint manifests). Such numbers come from outside and
// are hostile until checked: `offset + len > size` wraps around for a huge offset and lets a
// read run off the end of a mapping, `n * c * h * w` wraps for huge dimensions and divides by
// zero for a zero one. Every check here is written so that no intermediate can overflow.
//
// Header-only and free of HDF5 and LibTorch, so every reader (data/, checkpoint/ manifests) and
// the fuzz targets use the same checks.
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "io/errors.h"

namespace agave::io {

// The largest image (C·H·W bytes) any reader accepts: 64 MiB, e.g. 4096×4096×4. Far above any
// data set agave trains on, far below what would make one batch exhaust memory.
inline constexpr int64_t kMaxImageBytes = int64_t{64} << 20;
// The largest storage block (chunk) a reader inflates or copies at once: 1 GiB.
inline constexpr int64_t kMaxChunkBytes = int64_t{1} << 30;
// zlib's deflate cannot compress better than about 1032:1, so a gzip stream (or a deflated
// HDF5 chunk) of n bytes never holds more than 1032·n bytes (plus a small header): an upper
// bound for what a header may announce about compressed data.
inline constexpr uint64_t kMaxDeflateRatio = 1032;

// [offset, offset + len) lies inside [0, size).
constexpr bool range_fits(uint64_t offset, uint64_t len, uint64_t size) {
  return offset <= size && len <= size - offset;
}

// a·b, or nullopt when it exceeds `limit` (never computed when it would overflow).
constexpr std::optional<uint64_t> checked_mul(
    uint64_t a, uint64_t b, uint64_t limit = std::numeric_limits<uint64_t>::max()) {
  if (a != 0 && b > limit / a) return std::nullopt;
  return a * b;
}

// a + b, or nullopt when it exceeds `limit`.
constexpr std::optional<uint64_t> checked_add(
    uint64_t a, uint64_t b, uint64_t limit = std::numeric_limits<uint64_t>::max()) {
  if (a > limit || b > limit - a) return std::nullopt;
  return a + b;
}

// The product of dimensions that must each be >= 1, or nullopt when one is below 1 or the
// product exceeds `limit`.
inline std::optional<int64_t> dims_product(std::initializer_list<int64_t> dims,
                                           int64_t limit = std::numeric_limits<int64_t>::max()) {
  uint64_t p = 1;
  for (int64_t d : dims) {
    if (d < 1) return std::nullopt;
    const auto next = checked_mul(p, static_cast<uint64_t>(d), static_cast<uint64_t>(limit));
    if (!next) return std::nullopt;
    p = *next;
  }
  return static_cast<int64_t>(p);
}

inline std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// C·H·W of an image shape read from a file: every dimension >= 1 and the product at most
// kMaxImageBytes, else BadDataError naming the field.
inline int64_t require_image_dims(const std::string& path, const std::string& field, int64_t c,
                                  int64_t h, int64_t w) {
  const auto p = dims_product({c, h, w}, kMaxImageBytes);
  if (!p) {
    throw BadDataError(path, field + " " + dims_text({c, h, w}) +
                                 ": every dimension must be >= 1 and an image at most " +
                                 std::to_string(kMaxImageBytes) + " bytes");
  }
  return *p;
}

// A file name taken from a manifest: a plain name inside the manifest's folder, never an
// absolute path, a path with folders, "." or "..", or a name with control characters.
inline bool plain_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return false;
  for (unsigned char ch : name) {
    if (ch == '/' || ch == '\\' || ch < 0x20 || ch == 0x7f) return false;
  }
  return true;
}

// 64 lower-case hex digits, as Digest::hex() writes a SHA-256.
inline bool sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char ch : s) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

}  // namespace agave::io
