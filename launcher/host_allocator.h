#pragma once
// How glibc's malloc hands memory to LibTorch's CPU tensors.
#include <string>

namespace agave::launcher {

// Keeps freed tensor memory in the process for the next step instead of returning it to the
// kernel: blocks up to 32 MiB (glibc's ceiling for this setting) come from the heap, not from a
// fresh mmap each, and the heap is never trimmed. Every step of a training run allocates the
// same activations again; served from new pages, each 4 KiB page costs a page fault on first
// touch. The price, RSS staying at the run's peak, is one a trainer pays anyway; what it saves
// is in docs/performance.md ("Freed memory kept for reuse").
//
// Leaves malloc alone when the user tuned it (GLIBC_TUNABLES naming glibc.malloc, or a
// MALLOC_*_ variable). Returns what it did, for the start-up line.
std::string reuse_freed_tensor_memory();

}  // namespace agave::launcher
