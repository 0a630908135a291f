// agave_h5probe PATH MEMORY_BYTES: reads the HDF5 header of one image shard (attributes, chunk
// index, labels) under an address-space cap, for data/header_probe.h. A crash, hang or memory
// blow-up inside libhdf5 then ends this process, not the trainer that asked.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <new>

#include "data/errors.h"
#include "data/header_probe.h"
#include "data/shard.h"

int main(int argc, char** argv) {
  using namespace agave::data;
  if (argc != 3) {
    std::fprintf(stderr, "usage: agave_h5probe SHARD MEMORY_BYTES (used by agave's executables)\n");
    return 64;
  }
  const rlim_t cap = std::strtoull(argv[2], nullptr, 10);
  if (cap > 0) {
    const rlimit limit{cap, cap};
    setrlimit(RLIMIT_AS, &limit);
  }
  try {
    ShardReader reader(argv[1]);
    (void)reader.chunk_locations();
    (void)reader.read_labels();
    return kProbeOk;
  } catch (const BadDataError& e) {
    std::printf("%s\n", e.problem().c_str());
    return kProbeBadData;
  } catch (const DataError& e) {
    std::printf("%s\n", e.problem().c_str());
    return kProbeDataError;
  } catch (const std::bad_alloc&) {
    return kProbeOutOfMemory;
  }
}
