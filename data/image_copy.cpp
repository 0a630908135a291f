#include "data/image_copy.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <cstring>

namespace agave::data {

namespace {

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void copy_streaming(uint8_t* dst, const uint8_t* src, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
  }
  if (i < n) std::memcpy(dst + i, src + i, n - i);
}
// (__builtin_cpu_init: this initialiser may run before libgcc's own.)
const bool kStreaming = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
#endif

}  // namespace

void copy_image(uint8_t* dst, const uint8_t* src, size_t n, bool whole_lines) {
#if defined(__x86_64__)
  if (whole_lines && kStreaming && reinterpret_cast<uintptr_t>(dst) % 64 == 0) {
    return copy_streaming(dst, src, n);
  }
#endif
  (void)whole_lines;
  std::memcpy(dst, src, n);
}

void store_fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace agave::data
