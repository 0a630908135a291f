#pragma once
// The loader's copy kernels: an image from the mapped shard into its batch slot.
#include <cstddef>
#include <cstdint>

namespace agave::data {

// One image into its batch slot; `whole_lines`: images (and so slots, in 64-byte aligned
// buffers) are whole cache lines. Where the CPU has AVX-512 such copies use non-temporal
// stores: the destination's cache lines are written whole without being read first, which
// saves a third of the memory traffic of scattering a window's images over its batches
// (batches that are handed out later, so caching them is of no use). Those stores are weakly
// ordered: call store_fence() before handing the batches to another thread.
void copy_image(uint8_t* dst, const uint8_t* src, size_t n, bool whole_lines);

// Orders the streaming stores before what follows (the hand-over to the consumer).
void store_fence();

}  // namespace agave::data
