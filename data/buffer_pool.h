#pragma once
// Batch buffers of one size, recycled: a batch's memory comes back here when the last tensor
// using it is freed (on any thread) and a later batch reuses it, already mapped: fresh
// allocations of batch size would come from mmap() in malloc and page-fault and zero on every
// window. Buffers are carved from slabs that the kernel may back with 2 MiB pages
// (MADV_HUGEPAGE: fewer TLB misses while a window's images are scattered over its batches).
// The pool keeps its peak size until it is destroyed (the loader and its last batch gone).
#include <cstddef>
#include <mutex>
#include <vector>

namespace agave::data {

class BufferPool {
 public:
  // Buffers of `bytes` rounded up to 64 (cache-line aligned); `huge`: slabs of 2 MiB pages.
  // Throws std::logic_error for 0 bytes.
  BufferPool(size_t bytes, bool huge);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  void* get();
  void put(void* p);

 private:
  void grow();

  const size_t bytes_;
  const bool huge_;
  std::mutex mu_;
  std::vector<void*> slabs_;
  std::vector<void*> free_;
};

}  // namespace agave::data
