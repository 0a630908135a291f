// Linked into every agave binary of a CUDA LibTorch build (CMakeLists.txt, AGAVE_WITH_CUDA).
//
// glibc carves a new thread's static TLS out of the stack size it is asked for, and fails
// pthread_create with EINVAL when the TLS does not fit. A CUDA LibTorch linked at startup brings
// cuBLASLt, cuSOLVER, cuSPARSELt, NCCL, ... whose static TLS adds up to more than 100 KiB, and
// Debian's civetweb (under prometheus-cpp's Exposer) asks for exactly 100 KiB stacks: with pip's
// torch 2.11 the Prometheus exporter could not start a single thread (seen in every exporter
// and training-run test). Requests below 1 MiB are raised to 1 MiB; larger ones pass through.
#include <dlfcn.h>
#include <pthread.h>

#include <cstddef>

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size) {
  using Fn = int (*)(pthread_attr_t*, size_t);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kFloor = size_t{1} << 20;
  return real(attr, size < kFloor ? kFloor : size);
}
