#pragma once
// Streaming SHA-256 / MD5 on OpenSSL's EVP interface.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace agave::io {

class Digest {
 public:
  enum class Algorithm { kSha256, kMd5 };
  explicit Digest(Algorithm algorithm = Algorithm::kSha256);
  ~Digest();
  Digest(Digest&&) noexcept;
  Digest& operator=(Digest&&) noexcept;
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, size_t size);
  // Lower-case hex; the digest cannot be updated afterwards.
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Digest of a whole file; throws DataError naming the file when it cannot be read.
std::string file_digest(const std::string& path, Digest::Algorithm algorithm);

}  // namespace agave::io
