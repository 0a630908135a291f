#include "data/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

namespace agave::data {

BufferPool::BufferPool(size_t bytes, bool huge) : bytes_((bytes + 63) / 64 * 64), huge_(huge) {
  // grow() carves slabs into buffers of bytes_: zero would never fill one.
  if (bytes_ == 0) throw std::logic_error("BufferPool: buffers of 0 bytes");
}

BufferPool::~BufferPool() {
  for (void* p : slabs_) std::free(p);
}

void* BufferPool::get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) grow();
  void* p = free_.back();
  free_.pop_back();
  return p;
}

void BufferPool::put(void* p) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(p);
}

void BufferPool::grow() {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = huge_ ? kHuge : 64;
  const size_t want = std::max(8 * bytes_, huge_ ? kHuge : size_t{64} << 10);
  const size_t slab = (want + align - 1) / align * align;
  void* p = std::aligned_alloc(align, slab);
  if (p == nullptr) throw std::bad_alloc();
  if (huge_) ::madvise(p, slab, MADV_HUGEPAGE);
  slabs_.push_back(p);
  for (size_t at = 0; at + bytes_ <= slab; at += bytes_) {
    free_.push_back(static_cast<uint8_t*>(p) + at);
  }
}

}  // namespace agave::data
