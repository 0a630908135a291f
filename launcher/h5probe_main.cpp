// agave_h5probe [--datasets] PATH MEMORY_BYTES: reads the HDF5 header of one image shard
// (attributes, chunk index, labels), or with --datasets every object header of any HDF5 file of
// named tensors (checkpoint shards), under an address-space cap, for hdf5/header_probe.h. A crash,
// hang or memory blow-up inside libhdf5 then ends this process, not the trainer that asked.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <string>

#include "data/shard.h"
#include "hdf5/datasets.h"
#include "hdf5/header_probe.h"
#include "io/errors.h"
#include "version/version.h"

namespace {

// AddressSanitizer reserves terabytes of address space for its shadow memory before main: under
// an address-space cap the probe could not start (scripts/sanitize.sh builds). Its allocator
// fails an allocation past its own limit instead (allocator_may_return_null and
// max_allocation_size_mb in ASAN_OPTIONS).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

// Every dataset's header, and whether its values can be read as one block inside the file.
void probe_datasets(const char* path) {
  using namespace agave;
  const uint64_t file_bytes = std::filesystem::file_size(path);
  for (const auto& h : hdf5::read_dataset_headers(path)) {
    const std::string problem = hdf5::contiguous_storage_problem(h, file_bytes);
    if (!problem.empty()) throw io::BadDataError(path, problem);
  }
}

void probe_image_shard(const char* path) {
  agave::data::ShardReader reader(path);
  (void)reader.chunk_locations();
  (void)reader.read_labels();
}

void print_usage(std::FILE* to) {
  std::fprintf(to, "usage: agave_h5probe [%s] FILE MEMORY_BYTES (used by agave's executables)\n",
               agave::hdf5::kProbeDatasetsMode);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace agave::hdf5;
  using agave::io::BadDataError;
  using agave::io::DataError;
  // Like every agave executable: --help and --version exit 0 (64 is for a caller's misuse).
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    print_usage(stdout);
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("%s\n", agave::version::describe("agave_h5probe").c_str());
    return 0;
  }
  const bool datasets = argc == 4 && std::strcmp(argv[1], kProbeDatasetsMode) == 0;
  if (argc != 3 && !datasets) {
    print_usage(stderr);
    return 64;
  }
  const char* path = argv[argc - 2];
  const rlim_t cap = std::strtoull(argv[argc - 1], nullptr, 10);
  if (cap > 0 && !kAddressSanitizer) {
    const rlimit limit{cap, cap};
    setrlimit(RLIMIT_AS, &limit);
  }
  try {
    if (datasets) {
      probe_datasets(path);
    } else {
      probe_image_shard(path);
    }
    return kProbeOk;
  } catch (const BadDataError& e) {
    std::printf("%s\n", e.problem().c_str());
    return kProbeBadData;
  } catch (const DataError& e) {
    std::printf("%s\n", e.problem().c_str());
    return kProbeDataError;
  } catch (const std::bad_alloc&) {
    return kProbeOutOfMemory;
  } catch (const std::exception& e) {
    // hdf5/datasets.cpp's errors: libhdf5 refused the header in an ordinary way. The caller
    // names the file itself.
    std::string message = e.what();
    const std::string prefix = std::string(path) + ": ";
    if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
    std::printf("%s\n", message.c_str());
    return kProbeBadData;
  }
}
