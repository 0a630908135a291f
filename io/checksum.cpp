#include "io/checksum.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "io/errors.h"

namespace agave::io {

struct Digest::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool finished = false;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Digest::Digest(Algorithm algorithm) : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  const EVP_MD* md = algorithm == Algorithm::kSha256 ? EVP_sha256() : EVP_md5();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, md, nullptr) != 1) {
    throw std::runtime_error("OpenSSL: cannot initialise a message digest");
  }
}

Digest::~Digest() = default;
Digest::Digest(Digest&&) noexcept = default;
Digest& Digest::operator=(Digest&&) noexcept = default;

void Digest::update(const void* data, size_t size) {
  if (impl_->finished) throw std::logic_error("Digest::update after hex()");
  if (size > 0 && EVP_DigestUpdate(impl_->ctx, data, size) != 1) {
    throw std::runtime_error("OpenSSL: EVP_DigestUpdate failed");
  }
}

std::string Digest::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (impl_->finished) throw std::logic_error("Digest::hex called twice");
  if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1) {
    throw std::runtime_error("OpenSSL: EVP_DigestFinal_ex failed");
  }
  impl_->finished = true;
  static const char* kHex = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string file_digest(const std::string& path, Digest::Algorithm algorithm) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw DataError(path, std::string("cannot open: ") + std::strerror(errno));
  Digest digest(algorithm);
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) digest.update(buf.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw DataError(path, "read error while computing its checksum");
  return digest.hex();
}

}  // namespace agave::io
