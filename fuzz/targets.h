#pragma once
// The fuzz targets: one function per parser that takes outside bytes. Each must return
// normally (or throw nothing but the parser's documented error, which it catches) for every
// input; a crash, a sanitizer report, an uncaught exception or an unbounded allocation is a bug.
// Built as libFuzzer executables by scripts/fuzz.sh (AGAVE_BUILD_FUZZ, clang), and replayed over
// the committed corpus fuzz/corpus/<target>/ by the normal test suite (tests/fuzz).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace agave::fuzz {

using Target = int (*)(const uint8_t* data, size_t size);

int shard(const uint8_t* data, size_t size);                // HDF5 shard: header, chunk index
int manifest(const uint8_t* data, size_t size);             // <split>.manifest.json
int idx(const uint8_t* data, size_t size);                  // IDX images + labels header/records
int cifar(const uint8_t* data, size_t size);                // CIFAR-10 binary batch records
int tar(const uint8_t* data, size_t size);                  // tar / tar.gz members
int config(const uint8_t* data, size_t size);               // YAML config (with sweeps)
int checkpoint_manifest(const uint8_t* data, size_t size);  // checkpoint manifest.json

struct NamedTarget {
  const char* name;
  Target fn;
};
const std::vector<NamedTarget>& all_targets();

}  // namespace agave::fuzz
